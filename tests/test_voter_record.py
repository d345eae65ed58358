"""A voter's record: how much of a contradiction's charge it pays, and what its ballot weighs."""

from hypothesis import given
from hypothesis import strategies as st

from abci_app import voter_record
from flchain.v1 import types_pb2

BPS = 10_000


def record(agreed: int, contradicted: int, disputed: int = 0) -> types_pb2.Participant:
    return types_pb2.Participant(
        evidence_agreed_bps=agreed, evidence_contradicted_bps=contradicted, evidence_disputed_bps=disputed
    )


def test_a_newcomer_pays_in_full_and_a_liar_more():
    assert voter_record.contradicting_share_bps(record(0, 0)) == BPS // 2
    assert voter_record.charge_factor_bps(record(0, 0)) == BPS
    assert voter_record.charge_factor_bps(record(20_000, 20_000)) == BPS  # as much against as for
    assert voter_record.charge_factor_bps(record(10_000, 15_000)) == BPS  # (5000 + 15000) / 35000: 57%
    # 70% contradicting: 10 points above 60%, 5% of the charge each
    assert voter_record.contradicting_share_bps(record(10_000, 30_000)) == 7_000
    assert voter_record.charge_factor_bps(record(10_000, 30_000)) == BPS + 5 * 1_000
    assert voter_record.charge_factor_bps(record(0, 10**9)) == 3 * BPS - 5  # nothing but lies, prior aside


def test_a_record_of_agreement_lowers_the_charge():
    # 4 ballots, 60% agreeing and 10% contradicting each: (5000 + 4000) / (10000 + 28000)
    assert voter_record.contradicting_share_bps(record(24_000, 4_000)) == 9_000 * BPS // 38_000
    assert voter_record.charge_factor_bps(record(24_000, 4_000)) == 2 * (9_000 * BPS // 38_000)
    assert voter_record.charge_factor_bps(record(1_000_000, 0)) < 100  # never contradicted


def test_add_ballot_sums_the_shares():
    p = record(0, 0)
    voter_record.add_ballot(p, 6_666, 3_333, 0)
    voter_record.add_ballot(p, 5_000, 0, 5_000)
    assert (p.evidence_agreed_bps, p.evidence_contradicted_bps, p.evidence_disputed_bps) == (11_666, 3_333, 5_000)


def test_disputes_weigh_the_say_not_the_charge():
    # 1 ballot agreeing, 3 disputing helpful verdicts only the median backed: (5000 + 30000) / 50000
    p = record(10_000, 0, 30_000)
    p.stake = 9_000
    assert voter_record.disputing_share_bps(p) == 7_000
    assert voter_record.ballot_weight(p) == 9_000 * 6_666 // BPS  # as a 70% record of contradiction
    assert voter_record.charge_factor_bps(p) == voter_record.charge_factor_bps(record(10_000, 0))  # untouched


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, BPS))
def test_the_factor_is_bounded_and_monotone(agreed, contradicted, more):
    factor = voter_record.charge_factor_bps(record(agreed, contradicted))
    assert 0 <= factor <= 3 * BPS
    assert voter_record.charge_factor_bps(record(agreed + more, contradicted)) <= factor  # agreeing never costs
    assert voter_record.charge_factor_bps(record(agreed, contradicted + more)) >= factor


def test_a_ballot_weighs_the_stake_until_the_record_is_mostly_contradiction():
    def weight(agreed: int, contradicted: int) -> int:
        p = record(agreed, contradicted)
        p.stake = 9_000
        return voter_record.ballot_weight(p)

    assert weight(0, 0) == 9_000  # a newcomer: one half
    assert weight(30_000, 0) == 9_000
    assert weight(20_000, 20_000) == 9_000  # 50%
    assert weight(10_000, 30_000) == 9_000 * 6_666 // BPS  # 70%: two thirds of the way from 90%
    assert weight(0, 30_000) == 9_000 * 833 // BPS  # (5000 + 30000) / 40000: 87.5%
    assert weight(0, 40_000) == 0  # 90%


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, BPS), st.integers(0, 10**12))
def test_the_weight_is_bounded_by_the_stake_and_falls_with_contradiction(agreed, contradicted, more, stake):
    p = record(agreed, contradicted)
    p.stake = stake
    weight = voter_record.ballot_weight(p)
    assert 0 <= weight <= stake
    p.evidence_contradicted_bps += more
    assert voter_record.ballot_weight(p) <= weight
    factor, weight = voter_record.charge_factor_bps(p), voter_record.ballot_weight(p)
    p.evidence_disputed_bps += more  # a dispute never raises the weight, and never touches the charge
    assert voter_record.ballot_weight(p) <= weight and voter_record.charge_factor_bps(p) == factor
