"""The round game: draws, updates, ballots, tally, rewards, slashing, liveness and removal."""

import numpy as np
import pytest
from chain import MODEL_SHAPES, Chain, initial_model, make_params

from abci_app import aggregation, genesis, norm_bound, rounds, tensors, voter_record
from abci_app.address import to_bech32
from abci_app.codes import Code
from client import tx as txb
from flchain.v1 import query_pb2, types_pb2

PROPOSE, VOTE, SELECT, TALLY = (
    types_pb2.PHASE_PROPOSE,
    types_pb2.PHASE_VOTE,
    types_pb2.PHASE_SELECT,
    types_pb2.PHASE_TALLY,
)
REVEAL_UPDATES, REVEAL_BALLOTS = types_pb2.PHASE_REVEAL_UPDATES, types_pb2.PHASE_REVEAL_BALLOTS


def submit_all(chain: Chain, rnd, samples=(100, 300, 50), scale=0.01):
    updates = {a: (chain.honest_update(scale * (i + 1)), samples[i]) for i, a in enumerate(rnd.proposers)}
    out = chain.propose(rnd, updates)
    assert [r.code for r in out.tx_results] == [Code.OK] * len(updates)
    chain.blocks_until(lambda s: s.round().phase == VOTE)


LOSS = 10_000  # every test voter's held-out loss with all updates: 1 nat, in 1e-4 nats
GOOD, BAD = 1_000, -7_000  # leave-one-out scores: 10% of the loss better with the update, 70% worse


def vote_all(chain: Chain, rnd, evidence, start_loss=LOSS):
    """One ballot per listed voter (in rnd.voters order): its scores, one per submitted update; every
    voter's loss at the start of the round is start_loss (by default the updates neither help nor harm)."""
    out = chain.cast(rnd, {a: (LOSS, scores) for a, scores in zip(rnd.voters, evidence)}, start_loss)
    assert [r.code for r in out.tx_results] == [Code.OK] * len(evidence)
    chain.blocks_until(lambda s: s.round().id != rnd.id)


def model_values(chain: Chain) -> list[np.ndarray]:
    """The global model's tensors as the chain holds them (fixed point)."""
    return [tensors.read(t) for t in chain.state().model().tensors]


def stakes(chain: Chain) -> dict[bytes, int]:
    return {p.address: p.stake for p in chain.state().participants()}


# --- draw ------------------------------------------------------------------------------------


def test_draw_is_deterministic_disjoint_and_seed_dependent():
    turns = {bytes([i]) * 20: 0 for i in range(10)}
    seed = rounds.draw_seed(b"\x01" * 32, 1)
    p1, v1 = rounds.draw(turns, seed, 3, 5)
    assert (p1, v1) == rounds.draw(dict(reversed(turns.items())), seed, 3, 5)
    assert len(p1) == 3 and len(v1) == 5 and not set(p1) & set(v1)
    assert set(p1) | set(v1) <= set(turns)
    draws = {tuple(rounds.draw(turns, rounds.draw_seed(b"\x01" * 32, r), 3, 5)[0]) for r in range(20)}
    assert len(draws) > 5  # a new round id gives a new draw


def test_draw_seats_the_fewest_proposer_turns_first():
    turns = {bytes([i]) * 20: 1 if i < 8 else 0 for i in range(10)}  # two have not proposed in this pass
    for r in range(20):
        proposers, voters = rounds.draw(turns, rounds.draw_seed(b"\x02" * 32, r), 3, 5)
        assert {bytes([8]) * 20, bytes([9]) * 20} < set(proposers)  # both, and one drawn among the rest
        assert len(voters) == 5 and not set(proposers) & set(voters)


@pytest.mark.parametrize(
    ("eligible", "seats", "split"),
    [
        (4, (3, 5), (2, 2)),  # 1.5 proposers round up
        (14, (3, 13), (3, 11)),  # 2.625: a federation that lost 6 of 20 keeps its 3 proposers
        (10, (3, 13), (2, 8)),  # 1.875
        (11, (3, 9), (3, 8)),  # 2.75
        (3, (1, 12), (1, 2)),  # never fewer than one proposer
        (16, (3, 13), (3, 13)),  # enough for every seat
    ],
)
def test_draw_keeps_ratio_with_few_participants(eligible, seats, split):
    turns = {bytes([i]) * 20: 0 for i in range(eligible)}
    proposers, voters = rounds.draw(turns, b"s" * 32, *seats)
    assert (len(proposers), len(voters)) == split


def test_every_participant_proposes_once_per_pass_in_an_order_drawn_afresh():
    chain = Chain(participants=5)  # 2 proposers a round: two passes over the five in five rounds
    drawn = [list(chain.start_round().proposers)]
    while len(drawn) < 5:  # each tally draws the next round
        rnd = chain.round()
        submit_all(chain, rnd)
        vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
        drawn.append(list(chain.start_round().proposers))
    participants = list(chain.state().participants())
    assert [p.rounds_proposed for p in participants] == [2] * 5
    assert [p.proposer_turns for p in participants] == [2] * 5
    # the first pass ends in round 3 beside the second's first proposer: never one already seated
    assert len(set(drawn[0] + drawn[1] + drawn[2])) == 5
    assert drawn[:3] != drawn[3:] + [drawn[0]]  # the second pass is not the first one replayed


def test_a_participant_who_bonds_joins_the_current_pass():
    chain = Chain(participants=4, extra_accounts=1)
    for _ in range(2):
        rnd = chain.start_round()
        submit_all(chain, rnd)
        vote_all(chain, rnd, [[GOOD] * len(rnd.proposers)] * len(rnd.voters))
    fewest = min(p.proposer_turns for p in chain.state().participants())
    assert fewest >= 1
    chain.block(chain.tx(chain.keys[4], txb.bond(chain.params.min_stake)))
    newcomer = chain.state().must_participant(chain.keys[4].address)
    assert newcomer.proposer_turns == fewest and newcomer.rounds_proposed == 0


def test_round_waits_in_select_until_enough_participants():
    chain = Chain(participants=2, extra_accounts=1)  # min_participants is 3
    for _ in range(3):
        chain.block()
        assert chain.round().phase == SELECT
    chain.block(chain.tx(chain.keys[2], txb.bond(1_000)))
    rnd = chain.round()
    assert rnd.phase == PROPOSE and rnd.draw_height == chain.height
    assert [e["round"] for e in chain.events("round_started")] == ["1"]


def test_round_started_event_and_deadlines():
    chain = Chain()
    rnd = chain.start_round()
    assert rnd.propose_deadline_ms == chain.block_time_ms(rnd.draw_height) + chain.params.propose_timeout_ms
    assert rnd.vote_deadline_ms == 0  # set when VOTE begins
    assert len(rnd.proposers) == 2 and len(rnd.voters) == 3
    started = chain.events("round_started")[0]
    assert started["proposers"].split(",") == [chain.key(a).bech32 for a in rnd.proposers]


# --- sealed updates: commit, then reveal ------------------------------------------------------


@pytest.fixture
def proposing() -> tuple[Chain, types_pb2.Round]:
    chain = Chain(params=make_params(propose_timeout_ms=10_000, reveal_timeout_ms=10_000))  # ten blocks each
    return chain, chain.start_round()


def submit(chain, sender, msg):
    out = chain.block(chain.tx(sender, msg))
    return out.tx_results[0]


def reveal_one(chain, rnd, update, samples=10):
    """The first proposer commits to `update` and, once its partner's commitment is in too, reveals it."""
    first, second = rnd.proposers
    sealed = {first: chain.sealed_update(rnd, first, update, samples)}
    sealed[second] = chain.sealed_update(rnd, second, chain.honest_update(), 10)
    chain.commit(sealed, REVEAL_UPDATES)
    return submit(chain, chain.key(first), sealed[first].reveal)


def test_commit_from_non_proposer_for_wrong_round_or_twice(proposing):
    chain, rnd = proposing
    proposer, voter = rnd.proposers[0], rnd.voters[0]
    sealed = chain.sealed_update(rnd, proposer, chain.honest_update(), 10)
    assert submit(chain, chain.key(voter), sealed.commit).code == Code.NOT_PROPOSER
    wrong = submit(chain, chain.key(proposer), txb.commit_update(rnd.id + 1, sealed.commit.commit_update.commitment))
    assert wrong.code == Code.WRONG_ROUND and "current round is 1" in wrong.log
    assert submit(chain, chain.key(proposer), sealed.commit).code == Code.OK
    assert submit(chain, chain.key(proposer), sealed.commit).code == Code.ALREADY_COMMITTED
    assert chain.events("update_committed") == []  # the refusal emitted nothing
    assert [c.sender for c in chain.round().update_commitments] == [proposer]


def test_a_commitment_must_be_a_digest_and_a_reveal_carry_its_salt(proposing):
    chain, rnd = proposing
    key = chain.key(rnd.proposers[0])
    res = chain.machine.check_tx(chain.tx(key, txb.commit_update(rnd.id, b"short")))
    assert res.code == Code.BAD_COMMITMENT and "32-byte" in res.log
    reveal = txb.submit_update(rnd.id, chain.honest_update(), 10, salt=b"")
    assert chain.machine.check_tx(chain.tx(key, reveal, nonce=0)).code == Code.BAD_SALT


def test_an_early_reveal_is_refused(proposing):
    chain, rnd = proposing
    first = rnd.proposers[0]
    sealed = chain.sealed_update(rnd, first, chain.honest_update(), 10)
    assert submit(chain, chain.key(first), sealed.commit).code == Code.OK
    res = submit(chain, chain.key(first), sealed.reveal)  # its partner has not committed yet
    assert res.code == Code.WRONG_PHASE and "early reveal" in res.log
    assert chain.round().phase == PROPOSE and not chain.round().submitted


def test_commit_phase_ends_with_the_last_commitment_and_updates_are_revealed_after():
    chain = Chain(params=make_params(propose_timeout_ms=3_600_000, reveal_timeout_ms=3_600_000))
    rnd = chain.start_round()
    sealed = {
        a: chain.sealed_update(rnd, a, chain.honest_update(0.01 * (i + 1)), 10) for i, a in enumerate(rnd.proposers)
    }
    chain.block(*[chain.tx(chain.key(a), s.commit) for a, s in sealed.items()])
    sealed_round = chain.round()
    assert sealed_round.phase == REVEAL_UPDATES  # at the end of the block of the last commitment
    assert sealed_round.reveal_updates_deadline_ms == chain.block_time_ms(chain.height) + chain.params.reveal_timeout_ms
    assert chain.events("updates_sealed")[0]["committed"].split(",") == [chain.key(a).bech32 for a in rnd.proposers]
    assert chain.query("/updates").code == Code.NOT_FOUND  # nothing visible before the vote
    out = chain.reveal(sealed)
    assert [r.code for r in out.tx_results] == [Code.OK, Code.OK]
    assert chain.round().phase == VOTE and list(chain.round().submitted) == list(rnd.proposers)


def test_a_reveal_must_match_its_commitment(proposing):
    chain, rnd = proposing
    first, second = rnd.proposers
    sealed = {a: chain.sealed_update(rnd, a, chain.honest_update(), 10) for a in rnd.proposers}
    chain.commit(sealed, REVEAL_UPDATES)
    salt = chain.salt(first, rnd.id)
    other_content = submit(chain, chain.key(first), txb.submit_update(rnd.id, chain.honest_update(0.02), 10, salt))
    assert other_content.code == Code.COMMITMENT_MISMATCH and "does not match" in other_content.log
    other_samples = submit(chain, chain.key(first), txb.submit_update(rnd.id, chain.honest_update(), 11, salt))
    assert other_samples.code == Code.COMMITMENT_MISMATCH
    other_salt = txb.submit_update(rnd.id, chain.honest_update(), 10, chain.salt(second, rnd.id))
    assert submit(chain, chain.key(first), other_salt).code == Code.COMMITMENT_MISMATCH
    assert chain.round().phase == REVEAL_UPDATES and not chain.round().submitted  # refusals lose nothing
    assert submit(chain, chain.key(first), sealed[first].reveal).code == Code.OK
    assert submit(chain, chain.key(first), sealed[first].reveal).code == Code.ALREADY_SUBMITTED


def test_a_copied_commitment_can_never_be_revealed_and_its_copier_is_slashed(proposing):
    chain, rnd = proposing
    owner, copier = rnd.proposers
    before = stakes(chain)
    sealed = chain.sealed_update(rnd, owner, chain.honest_update(), 10)
    # the copier replays the owner's commitment (as seen in the mempool) ahead of it: both are kept
    chain.block(chain.tx(chain.key(copier), sealed.commit), chain.tx(chain.key(owner), sealed.commit))
    assert chain.round().phase == REVEAL_UPDATES
    assert submit(chain, chain.key(owner), sealed.reveal).code == Code.OK
    # once revealed, the owner's update and salt are public; under the copier's address they do not match
    assert submit(chain, chain.key(copier), sealed.reveal).code == Code.COMMITMENT_MISMATCH
    chain.blocks_until(lambda s: s.round().phase != REVEAL_UPDATES)
    after, rate = stakes(chain), chain.params.liveness_slash_bps
    assert after[copier] == before[copier] - before[copier] * rate // 10_000 and after[owner] == before[owner]
    assert [e["reason"] for e in chain.events("slashed")] == ["unrevealed_update"]
    assert list(chain.round().submitted) == [owner]


def test_reveal_without_commitment_and_after_the_deadline(proposing):
    chain, rnd = proposing
    punctual, late = rnd.proposers
    before = stakes(chain)
    sealed = {a: chain.sealed_update(rnd, a, chain.honest_update(), 10) for a in rnd.proposers}
    assert submit(chain, chain.key(punctual), sealed[punctual].commit).code == Code.OK
    chain.blocks_until(lambda s: s.round().phase != PROPOSE)  # the late one never commits: deadline
    assert chain.round().phase == REVEAL_UPDATES
    assert chain.block_time_ms(chain.height) >= rnd.propose_deadline_ms
    assert submit(chain, chain.key(late), sealed[late].commit).code == Code.WRONG_PHASE
    assert submit(chain, chain.key(late), sealed[late].reveal).code == Code.NOT_COMMITTED
    after = stakes(chain)
    assert after[late] == before[late] - before[late] * chain.params.liveness_slash_bps // 10_000
    assert after[punctual] == before[punctual]
    # the punctual proposer misses the reveal deadline: too late, and slashed for it
    chain.blocks_until(lambda s: s.round().phase != REVEAL_UPDATES)
    assert submit(chain, chain.key(punctual), sealed[punctual].reveal).code in (Code.WRONG_PHASE, Code.WRONG_ROUND)
    assert stakes(chain)[punctual] == before[punctual] - before[punctual] * chain.params.liveness_slash_bps // 10_000
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_NO_UPDATES


def test_phases_end_in_the_block_of_their_last_tx_and_the_next_round_is_drawn_at_the_tally():
    chain = Chain(
        params=make_params(propose_timeout_ms=3_600_000, vote_timeout_ms=3_600_000, reveal_timeout_ms=3_600_000)
    )
    rnd = chain.start_round()
    submit_all(chain, rnd)  # both updates in one block: VOTE begins at its end, not at the deadline
    assert chain.round().phase == VOTE and chain.round().vote_height == chain.height
    assert chain.round().vote_deadline_ms == chain.block_time_ms(chain.height) + chain.params.vote_timeout_ms
    vote_all(chain, rnd, [[GOOD, GOOD]] * len(rnd.voters))
    tallied = chain.height
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_ACCEPTED
    following = chain.round()  # drawn in the tally's block: no block spent in SELECT
    assert (following.id, following.phase, following.draw_height) == (rnd.id + 1, PROPOSE, tallied)
    # draw, commit, reveal, commit ballots, reveal ballots: five blocks from draw to tally
    assert tallied - rnd.draw_height == 4


def test_update_wrong_shape(proposing):
    chain, rnd = proposing
    bad = [("fc.weight", np.zeros((3, 4), np.float32)), ("fc.bias", np.zeros(4, np.float32))]
    res = reveal_one(chain, rnd, bad)
    assert res.code == Code.BAD_SHAPE and "do not match the model" in res.log


def test_update_bytes_not_matching_shape(proposing):
    chain, rnd = proposing
    msg = txb.submit_update(rnd.id, chain.honest_update(), 10, chain.salt(rnd.proposers[0], rnd.id))
    msg.submit_update.tensors[1].values = b"\x00" * 3
    res = submit(chain, chain.key(rnd.proposers[0]), msg)  # stateless: refused in any phase
    assert res.code == Code.BAD_SHAPE and "3 bytes" in res.log


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_update_with_nan_or_inf(proposing, bad):
    chain, rnd = proposing
    update = chain.honest_update()
    update[0][1][0, 0] = bad
    msg = txb.submit_update(rnd.id, update, 10, chain.salt(rnd.proposers[0], rnd.id))
    assert submit(chain, chain.key(rnd.proposers[0]), msg).code == Code.NON_FINITE


def test_update_norm_bound(proposing):
    chain, rnd = proposing
    res = reveal_one(chain, rnd, chain.honest_update(60.0))
    assert res.code == Code.NORM_TOO_LARGE and "exceeds the bound" in res.log


def test_update_of_zeros_is_refused(proposing):
    chain, rnd = proposing
    res = reveal_one(chain, rnd, chain.honest_update(0.0))
    assert res.code == Code.EMPTY_UPDATE and "changes nothing" in res.log


def test_update_below_fixed_point_resolution_is_refused(proposing):
    chain, rnd = proposing
    tiny = chain.honest_update(2.0**-18)  # below the fixed-point resolution (2^-16): zero as well
    assert reveal_one(chain, rnd, tiny).code == Code.EMPTY_UPDATE


@pytest.mark.parametrize("samples", [0, 1_000_001])
def test_update_num_samples_bounds(proposing, samples):
    chain, rnd = proposing
    msg = txb.submit_update(rnd.id, chain.honest_update(), samples, chain.salt(rnd.proposers[0], rnd.id))
    assert submit(chain, chain.key(rnd.proposers[0]), msg).code == Code.BAD_NUM_SAMPLES


def test_check_tx_sees_phase_and_role(proposing):
    chain, rnd = proposing
    sealed = chain.sealed_ballot(rnd, rnd.voters[0], LOSS, [GOOD, GOOD])
    assert chain.machine.check_tx(chain.tx(chain.key(rnd.voters[0]), sealed.commit)).code == Code.WRONG_PHASE


# --- candidate and ballots -------------------------------------------------------------------


def test_candidate_is_exact_weighted_fedavg():
    chain = Chain(params=make_params(sample_bound_bps=0))  # every claim weighed in full
    rnd = chain.start_round()
    submit_all(chain, rnd, samples=(100, 150))
    cand = chain.state().candidate()
    assert cand.round == rnd.id and cand.total_samples == 250 and list(cand.contributors) == list(rnd.proposers)
    scale = 1 << chain.params.frac_bits
    expected = round((100 * round(0.01 * scale) + 150 * round(0.02 * scale)) / 250)
    delta = tensors.read(cand.delta[0])
    assert delta.shape == MODEL_SHAPES[0][1] and (delta == expected).all()
    assert chain.round().phase == VOTE
    assert chain.query("/candidate").code == Code.OK


def test_an_inflated_claim_weighs_at_most_the_sample_bound():
    chain = Chain()
    rnd = chain.start_round()
    submit_all(chain, rnd, samples=(100, 1_000_000))  # the second claims ten thousand times the first
    bound = 100 * chain.params.sample_bound_bps // 10_000  # a share of the lower median of the round's claims
    assert chain.round().sample_bound == bound == 100
    weights = [chain.state().must_update(rnd.id, a).weight for a in rnd.proposers]
    assert weights == [100, bound]
    assert chain.events("claim_capped") == [
        {"round": str(rnd.id), "proposer": to_bech32(rnd.proposers[1]), "num_samples": "1000000", "bound": "100"}
    ]
    assert chain.events("candidate_ready")[0]["sample_bound"] == "100"
    cand = chain.state().candidate()
    scale = 1 << chain.params.frac_bits
    expected = round((100 * round(0.01 * scale) + bound * round(0.02 * scale)) / (100 + bound))
    assert cand.total_samples == 100 + bound and (tensors.read(cand.delta[0]) == expected).all()
    # both join (every voter finds both helpful): the model moves by the bounded FedAvg as well
    model_before = model_values(chain)
    vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
    assert [v.included for v in chain.state().round_by_id(rnd.id).verdicts] == [True, True]
    moved = aggregation.apply_delta(model_before, [tensors.read(t) for t in cand.delta])
    assert all((m == e).all() for m, e in zip(model_values(chain), moved))


def test_the_sample_bound_reads_earlier_rounds_claims():
    """A later round's bound is the median of its own and the window's earlier claims: two inflated
    claims in one round cannot move it once earlier rounds have claimed honestly."""
    chain = Chain(params=make_params(vote_timeout_ms=12_000, reveal_timeout_ms=12_000))
    for claims in ((100, 120), (110, 90)):
        rnd = chain.start_round()
        submit_all(chain, rnd, samples=claims)
        chain.blocks_until(lambda s, r=rnd.id: s.round().id > r)  # no ballots: the round ends without them
    rnd = chain.start_round()
    submit_all(chain, rnd, samples=(1_000_000, 1_000_000))
    bound = 110 * chain.params.sample_bound_bps // 10_000  # the lower median of 90, 100, 110, 120 and the two
    assert chain.round().sample_bound == bound
    assert [chain.state().must_update(rnd.id, a).weight for a in rnd.proposers] == [bound, bound]


def test_without_a_sample_bound_every_claim_counts_in_full():
    chain = Chain(params=make_params(sample_bound_bps=0))
    rnd = chain.start_round()
    submit_all(chain, rnd, samples=(100, 1_000_000))
    assert chain.round().sample_bound == 0
    assert [chain.state().must_update(rnd.id, a).weight for a in rnd.proposers] == [100, 1_000_000]
    assert chain.events("claim_capped") == []


def test_ballot_rules():
    chain = Chain(params=make_params(vote_timeout_ms=12_000, reveal_timeout_ms=12_000))
    rnd = chain.start_round()
    submit_all(chain, rnd)
    voter, other, third = rnd.voters
    sealed = chain.sealed_ballot(rnd, voter, LOSS, [GOOD, BAD], alignments=[6_000, -8_000])
    assert submit(chain, chain.key(rnd.proposers[0]), sealed.commit).code == Code.NOT_VOTER
    wrong = txb.commit_ballot(rnd.id + 1, sealed.commit.commit_ballot.commitment)
    assert submit(chain, chain.key(voter), wrong).code == Code.WRONG_ROUND
    assert submit(chain, chain.key(voter), sealed.commit).code == Code.OK
    assert submit(chain, chain.key(voter), sealed.commit).code == Code.ALREADY_COMMITTED
    early = submit(chain, chain.key(voter), sealed.reveal)
    assert early.code == Code.WRONG_PHASE and "early reveal" in early.log
    short = chain.sealed_ballot(rnd, third, LOSS, [GOOD])  # committed, but to a ballot of one score
    chain.commit({other: chain.sealed_ballot(rnd, other, LOSS, [GOOD, GOOD]), third: short}, REVEAL_BALLOTS)
    refused = submit(chain, chain.key(third), short.reveal)
    assert refused.code == Code.BAD_BALLOT and "has 2 updates under vote" in refused.log
    salt = chain.salt(voter, rnd.id, b"ballot")
    for loss, start_loss in ((0, LOSS), (LOSS, 0)):  # a ballot without its start loss: an older client's
        refused = submit(chain, chain.key(voter), txb.vote(rnd.id, loss, [GOOD, BAD], salt, start_loss=start_loss))
        name = "loss" if loss == 0 else "start_loss"
        assert refused.code == Code.BAD_BALLOT and f"a ballot's {name} must be in 1..1000000000" in refused.log
    for alignments, says in (([6_000], "one alignment per score or none"), ([6_000, -10_001], "within +-10000")):
        refused = submit(
            chain, chain.key(voter), txb.vote(rnd.id, LOSS, [GOOD, BAD], salt, alignments, start_loss=LOSS)
        )
        assert refused.code == Code.BAD_BALLOT and says in refused.log
    for scores, alignments in (([GOOD, GOOD], [6_000, -8_000]), ([GOOD, BAD], [6_000, 8_000]), ([GOOD, BAD], [])):
        changed = submit(chain, chain.key(voter), txb.vote(rnd.id, LOSS, scores, salt, alignments, start_loss=LOSS))
        assert changed.code == Code.COMMITMENT_MISMATCH  # another ballot than the one committed
    assert submit(chain, chain.key(voter), sealed.reveal).code == Code.OK
    assert submit(chain, chain.key(voter), sealed.reveal).code == Code.ALREADY_VOTED
    ballots = chain.round().ballots
    assert [(b.voter, b.loss, list(b.scores), list(b.alignments)) for b in ballots] == [
        (voter, LOSS, [GOOD, BAD], [6_000, -8_000])
    ]
    updates = query_pb2.UpdateList.FromString(chain.query("/updates").value).updates
    assert [u.proposer for u in updates] == list(rnd.proposers) and [u.num_samples for u in updates] == [100, 300]


def test_ballots_stay_sealed_until_every_voter_committed_and_a_copier_cannot_reveal():
    chain = Chain(params=make_params(vote_timeout_ms=3_600_000, reveal_timeout_ms=10_000))
    rnd = chain.start_round()
    submit_all(chain, rnd)
    honest, copier, third = rnd.voters
    before = stakes(chain)
    sealed = chain.sealed_ballot(rnd, honest, LOSS, [GOOD, GOOD])
    chain.block(chain.tx(chain.key(honest), sealed.commit), chain.tx(chain.key(copier), sealed.commit))
    assert chain.round().phase == VOTE and not chain.round().ballots  # nothing revealed, nothing to copy
    chain.commit({third: chain.sealed_ballot(rnd, third, LOSS, [GOOD, GOOD])}, REVEAL_BALLOTS)
    assert submit(chain, chain.key(honest), sealed.reveal).code == Code.OK
    assert submit(chain, chain.key(copier), sealed.reveal).code == Code.COMMITMENT_MISMATCH
    chain.block(chain.tx(chain.key(third), chain.sealed_ballot(rnd, third, LOSS, [GOOD, GOOD]).reveal))
    chain.blocks_until(lambda s: s.round().id != rnd.id)  # the copier's reveal never comes: the deadline
    unrevealed = [e for e in chain.events("slashed") if e["reason"] == "unrevealed_ballot"]
    assert [e["address"] for e in unrevealed] == [chain.key(copier).bech32]
    assert stakes(chain)[copier] < before[copier] and len(chain.state().round_by_id(rnd.id).ballots) == 2


def test_an_unrevealed_ballot_is_a_missed_vote():
    chain = Chain()
    rnd = chain.start_round()
    submit_all(chain, rnd)
    sealed = {a: chain.sealed_ballot(rnd, a, LOSS, [GOOD, GOOD]) for a in rnd.voters}
    chain.commit(sealed, REVEAL_BALLOTS)
    silent = rnd.voters[2]
    before = stakes(chain)
    chain.reveal({a: s for a, s in sealed.items() if a != silent})
    chain.blocks_until(lambda s: s.round().id != rnd.id)  # the reveal deadline passes
    finished = chain.state().round_by_id(rnd.id)
    assert finished.outcome == types_pb2.OUTCOME_ACCEPTED and len(finished.ballots) == 2
    after, p = stakes(chain), chain.params
    assert after[silent] == before[silent] - before[silent] * p.liveness_slash_bps // 10_000
    late = submit(chain, chain.key(silent), sealed[silent].reveal)
    assert late.code in (Code.WRONG_PHASE, Code.WRONG_ROUND)


def test_included_updates_move_the_model_and_earn_by_contribution():
    chain = Chain()
    rnd = chain.start_round()
    model_before = model_values(chain)
    before = stakes(chain)
    submit_all(chain, rnd)
    delta = [tensors.read(t) for t in chain.state().candidate().delta]  # both included: the candidate
    half = chain.params.full_credit_bps // 2
    vote_all(chain, rnd, [[GOOD, half], [GOOD, half], [GOOD, half]])
    model = chain.state().model()
    assert model.version == 1 and model.round == rnd.id
    assert all(
        (tensors.read(t) == m).all() for t, m in zip(model.tensors, aggregation.apply_delta(model_before, delta))
    )
    after, p = stakes(chain), chain.params
    assert GOOD >= p.full_credit_bps  # the first update earns the full reward, the second half of it
    first, second = rnd.proposers
    assert after[first] == before[first] + before[first] * p.proposer_reward_bps // 10_000
    assert after[second] == before[second] + before[second] * (p.proposer_reward_bps // 2) // 10_000
    for v in rnd.voters:  # agreement offsets a charge and earns nothing: a copied ballot would agree too
        assert after[v] == before[v]
    finished = chain.state().round_by_id(rnd.id)
    assert (finished.phase, finished.outcome) == (TALLY, types_pb2.OUTCOME_ACCEPTED)
    assert [(v.included, v.condemned, v.harmful_bps, v.contribution_bps) for v in finished.verdicts] == [
        (True, False, 0, GOOD),
        (True, False, 0, half),
    ]
    assert chain.round().id == rnd.id + 1 and chain.round().model_version == 1
    assert chain.state().candidate() is None


def test_a_round_whose_updates_together_harm_every_voter_keeps_only_what_clearly_helps():
    chain = Chain()
    rnd = chain.start_round()
    model_before = model_values(chain)
    before = stakes(chain)
    submit_all(chain, rnd)
    helpful, neutral = rnd.proposers  # submitted in this order
    kept = [tensors.read(t) for t in chain.state().must_update(rnd.id, helpful).tensors]
    # leaving the first out costs every voter 10% of its loss, the second about nothing (it looks
    # like its peer), yet every voter's loss rose 12% from the start: the round's updates together harm
    vote_all(chain, rnd, [[GOOD, 100]] * 3, start_loss=LOSS - 1_200)
    finished = chain.state().round_by_id(rnd.id)
    assert (finished.gain.gain_bps, finished.gain.spread_bps, finished.gain.harmful) == (-1_200, 0, True)
    assert [(v.included, v.condemned, v.left_out_with_round) for v in finished.verdicts] == [
        (True, False, False),
        (False, False, True),
    ]
    model = model_values(chain)
    assert all((m == e).all() for m, e in zip(model, aggregation.apply_delta(model_before, kept)))
    after, p = stakes(chain), chain.params
    assert after[helpful] == before[helpful] + before[helpful] * p.proposer_reward_bps // 10_000
    assert after[neutral] == before[neutral]  # left out, neither paid nor slashed: the round harms, not it
    assert all(after[v] == before[v] for v in rnd.voters)  # charged as on the ballots' verdict alone
    gains = [dict(e.attributes) for e in chain.last.events if e.type == "round_gain"]
    assert gains == [{"round": str(rnd.id), "gain_bps": "-1200", "spread_bps": "0", "harmful": "true"}]


def test_a_round_that_helps_keeps_every_update_its_ballots_let_in():
    chain = Chain()
    rnd = chain.start_round()
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[GOOD, 100]] * 3, start_loss=LOSS + 1_200)  # every voter's loss fell 12% with the round
    finished = chain.state().round_by_id(rnd.id)
    assert (finished.gain.gain_bps, finished.gain.harmful) == (1_200, False)
    assert [(v.included, v.left_out_with_round) for v in finished.verdicts] == [(True, False), (True, False)]


def test_a_condemned_update_is_left_out_and_only_its_proposer_slashed():
    chain = Chain(participants=8)
    rnd = chain.start_round()
    model_before = model_values(chain)
    before = stakes(chain)
    submit_all(chain, rnd)
    bad, good = rnd.proposers  # submitted in this order
    kept = [tensors.read(t) for t in chain.state().must_update(rnd.id, good).tensors]
    # the third voter has unusual data: it does not see the condemned update's harm, yet agrees on the other
    vote_all(chain, rnd, [[BAD, GOOD], [BAD, GOOD], [100, GOOD]])
    after, p = stakes(chain), chain.params
    assert after[bad] == before[bad] - before[bad] * p.proposer_slash_bps // 10_000
    assert after[good] == before[good] + before[good] * p.proposer_reward_bps // 10_000
    model = model_values(chain)
    assert all((m == e).all() for m, e in zip(model, aggregation.apply_delta(model_before, kept)))
    finished = chain.state().round_by_id(rnd.id)
    assert finished.outcome == types_pb2.OUTCOME_ACCEPTED
    assert [(v.proposer, v.included, v.condemned, v.harmful_bps, v.two_thirds_bps) for v in finished.verdicts] == [
        (bad, False, True, 6_666, BAD),  # two of three voters reach -70%: the size of the harm is backed
        (good, True, False, 0, GOOD),
    ]
    judged = chain.events("update_judged")
    assert [int(e["two_thirds_bps"]) for e in judged] == [BAD, GOOD]  # what the chain keeps, it tells
    unusual = rnd.voters[2]
    assert after[unusual] == before[unusual]  # agreed on one, contradicted none: nothing either way
    slashed = [dict(e.attributes) for e in chain.last.events if e.type == "slashed"]
    assert [s["reason"] for s in slashed] == ["update_condemned"]
    nxt = chain.start_round()
    assert nxt.id == rnd.id + 1 and nxt.seed != rnd.seed


def test_a_voter_contradicting_most_clear_verdicts_is_slashed():
    chain = Chain(participants=8)
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, GOOD], [BAD, GOOD], [GOOD, BAD]])  # the third reports the opposite of both
    liar = rnd.voters[2]
    p = chain.params
    assert stakes(chain)[liar] == before[liar] - before[liar] * p.voter_slash_bps // 10_000
    reasons = {dict(e.attributes)["reason"] for e in chain.last.events if e.type == "slashed"}
    assert reasons == {"update_condemned", "voter_contradicted"}


def test_liars_above_a_third_lose_their_say_not_their_stake_against_a_helpful_median():
    chain = Chain(participants=10, params=make_params(num_voters=7))
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    # three liars of seven (43%) trash both updates: no two thirds back the helpful verdicts, but
    # the median voter is honest and finds each 10% helpful
    vote_all(chain, rnd, [[GOOD, GOOD]] * 4 + [[BAD, BAD]] * 3)
    honest, liars = rnd.voters[:4], rnd.voters[4:]
    finished = chain.state().round_by_id(rnd.id)
    assert [(v.included, v.condemned, v.contribution_bps) for v in finished.verdicts] == [(True, False, GOOD)] * 2
    after = stakes(chain)
    assert all(after[v] == before[v] for v in rnd.voters)  # nobody is charged short of two thirds
    records = {
        p.address: (p.evidence_agreed_bps, p.evidence_contradicted_bps, p.evidence_disputed_bps)
        for p in chain.state().participants()
    }
    assert [records[v] for v in honest] == [(10_000, 0, 0)] * 4
    assert [records[v] for v in liars] == [(0, 0, 10_000)] * 3  # their records count it as disputed
    liar = chain.state().participant(liars[0])
    assert voter_record.charge_factor_bps(liar) == 10_000  # what a contradiction costs: a newcomer's
    assert voter_record.ballot_weight(liar) < liar.stake  # what its ballot weighs: less


def test_agreement_offsets_a_contradictions_charge_in_the_same_round():
    chain = Chain(participants=8)
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    # the third agrees that the first update is harmful and contradicts the clear verdict on the second
    vote_all(chain, rnd, [[BAD, GOOD], [BAD, GOOD], [BAD, BAD]])
    dissenter, p = rnd.voters[2], chain.params
    charge = p.voter_slash_bps // 2 - p.voter_reward_bps // 2  # a newcomer pays its charge in full
    assert charge > 0
    assert stakes(chain)[dissenter] == before[dissenter] - before[dissenter] * charge // 10_000
    assert all(stakes(chain)[v] == before[v] for v in rnd.voters[:2])


def test_each_ballot_joins_the_voters_record():
    chain = Chain(participants=8)
    rnd = chain.start_round()
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, GOOD], [BAD, GOOD], [GOOD, BAD]])
    records = {p.address: (p.evidence_agreed_bps, p.evidence_contradicted_bps) for p in chain.state().participants()}
    assert [records[v] for v in rnd.voters] == [(10_000, 0), (10_000, 0), (0, 10_000)]
    assert all(records[a] == (0, 0) for a in rnd.proposers)


def test_a_voter_with_a_record_of_agreement_pays_less_for_a_contradiction():
    chain = Chain(participants=5)  # every round draws all five: 2 proposers, 3 voters
    for _ in range(12):
        rnd = chain.start_round()
        submit_all(chain, rnd)
        voters = {p.address: p for p in chain.state().participants() if p.address in rnd.voters}
        lightest = min(p.stake for p in voters.values())  # then a third of the stake at most: a clear verdict
        dissenter = next(
            (a for a, p in voters.items() if p.evidence_agreed_bps >= 20_000 and p.stake == lightest), None
        )
        if dissenter is None:
            vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
            continue
        # the others find both updates helpful (a clear verdict); it finds both harmful
        vote_all(chain, rnd, [[BAD, BAD] if a == dissenter else [GOOD, GOOD] for a in rnd.voters])
        record = voters[dissenter]
        factor = voter_record.charge_factor_bps(record)
        assert factor < 10_000  # two ballots of agreement against half a ballot each of prior
        after = chain.state().must_participant(dissenter)
        charge_bps = -(-chain.params.voter_slash_bps * factor // 10_000)  # rounded up, against the voter
        assert after.stake == record.stake - record.stake * charge_bps // 10_000
        assert after.evidence_contradicted_bps == record.evidence_contradicted_bps + 10_000
        return
    pytest.fail("no voter with two ballots of agreement was drawn beside heavier ones")


def test_a_liars_record_raises_its_charge_but_never_above_its_stake():
    chain = Chain(participants=5, params=make_params(voter_slash_bps=6_000, min_stake=100))
    liar = None
    for _ in range(12):
        rnd = chain.start_round()
        submit_all(chain, rnd)
        liar = liar or rnd.voters[2]
        if liar not in rnd.voters:
            vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
            continue
        record = chain.state().must_participant(liar)
        vote_all(chain, rnd, [[GOOD, BAD] if a == liar else [BAD, GOOD] for a in rnd.voters])  # it reverses both
        after = chain.state().must_participant(liar)
        if record.evidence_contradicted_bps == 0:  # a newcomer: the charge in full, 60%
            assert after.stake == record.stake - record.stake * 6_000 // 10_000
            continue
        # its record: one ballot of contradiction and half a ballot of prior each way, 75% against
        assert voter_record.charge_factor_bps(record) == 10_000 + 5 * 1_500
        # 60% x 1.75 is 105% of its stake: it loses all of it and no more
        assert (after.stake, after.status, after.total_slashed) == (0, types_pb2.PARTICIPANT_STATUS_REMOVED, 2_000)
        return
    pytest.fail("the liar was not drawn as a voter twice")


def test_an_update_half_the_stake_finds_harmful_is_left_out_unpunished():
    chain = Chain(participants=6, params=make_params(num_voters=4))
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    close, clean = rnd.proposers
    vote_all(chain, rnd, [[BAD, GOOD], [BAD, GOOD], [GOOD, GOOD], [GOOD, GOOD]])
    finished = chain.state().round_by_id(rnd.id)
    assert [(v.included, v.condemned) for v in finished.verdicts] == [(False, False), (True, False)]
    after = stakes(chain)
    assert after[close] == before[close]  # neither paid nor slashed: a close call
    assert all(after[v] >= before[v] for v in rnd.voters)  # a close call: differing on it costs nothing


def test_votes_weigh_by_stake():
    chain = Chain(participants=6)
    rnd = chain.start_round()
    heavy = rnd.voters[0]
    chain.block(chain.tx(chain.key(heavy), txb.bond(8_000)))  # 10000 against 2000 + 2000
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, GOOD], [GOOD, GOOD], [GOOD, GOOD]])
    verdicts = chain.state().round_by_id(rnd.id).verdicts
    assert (verdicts[0].condemned, verdicts[0].harmful_bps) == (True, 7_142)


def test_a_record_of_contradiction_takes_away_a_ballots_say():
    """The voter of test_votes_weigh_by_stake decides that verdict with 10000 of 14000 stake; once its
    record is mostly contradiction (ballots reversing clear verdicts), the same stake and ballot
    weigh nothing and the update joins."""
    chain = Chain(participants=6, params=make_params(voter_slash_bps=100))  # lies cost little here
    liar = None
    for _ in range(80):
        rnd = chain.start_round()
        liar = liar or rnd.voters[0]
        record = chain.state().must_participant(liar)
        if liar not in rnd.voters:
            submit_all(chain, rnd)
            vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
            continue
        if voter_record.ballot_weight(record) > 0:  # the others find both updates helpful; it reverses both
            submit_all(chain, rnd)
            vote_all(chain, rnd, [[BAD, BAD] if a == liar else [GOOD, GOOD] for a in rnd.voters])
            continue
        assert voter_record.contradicting_share_bps(record) >= voter_record.WEIGHT_NONE_FROM_BPS
        chain.block(chain.tx(chain.key(liar), txb.bond(10_000 - record.stake)))
        submit_all(chain, rnd)
        vote_all(chain, rnd, [[BAD, GOOD] if a == liar else [GOOD, GOOD] for a in rnd.voters])
        verdicts = chain.state().round_by_id(rnd.id).verdicts
        assert [(v.included, v.condemned) for v in verdicts] == [(True, False)] * 2
        assert verdicts[0].harmful_bps < 10  # a weight of 1 (judge's floor) against the others' 4000
        return
    pytest.fail("the liar was not drawn as a voter often enough")


def test_nothing_included_keeps_the_model():
    chain = Chain()
    rnd = chain.start_round()
    model_before = chain.state().model()
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, BAD]] * 3)
    assert chain.state().model() == model_before
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_REJECTED


def test_no_quorum_keeps_model_and_spares_proposers():
    chain = Chain(params=make_params(quorum_bps=6_700))
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    voter = rnd.voters[0]
    chain.block(chain.tx(chain.key(voter), chain.sealed_ballot(rnd, voter, LOSS, [BAD, BAD]).commit))  # 1 of 3
    chain.blocks_until(lambda s: s.round().id != rnd.id)  # the commit deadline ends the round: no reveal phase
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_NO_QUORUM
    assert all(stakes(chain)[a] == before[a] for a in rnd.proposers)
    silent = rnd.voters[1]
    assert stakes(chain)[silent] == before[silent] - before[silent] * chain.params.liveness_slash_bps // 10_000


def test_without_a_quorum_bar_a_round_nobody_voted_in_ends_without_a_quorum():
    params = make_params()
    params.quorum_bps = 0  # set apart: MergeFrom skips a 0
    chain = Chain(params=params)
    rnd = chain.start_round()
    before = stakes(chain)
    submit_all(chain, rnd)
    chain.blocks_until(lambda s: s.round().id != rnd.id)  # every voter silent: the deadlines end the round
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_NO_QUORUM
    assert all(stakes(chain)[a] == before[a] for a in rnd.proposers)
    rnd = chain.start_round()  # a voter commits, but no ballot is ever revealed
    submit_all(chain, rnd)
    voter = rnd.voters[0]
    chain.block(chain.tx(chain.key(voter), chain.sealed_ballot(rnd, voter, LOSS, [GOOD, GOOD]).commit))
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_NO_QUORUM


def test_liveness_slashing_of_silent_proposer():
    chain = Chain()
    rnd = chain.start_round()
    before = stakes(chain)
    sealed = chain.sealed_update(rnd, rnd.proposers[0], chain.honest_update(), 10)
    chain.block(chain.tx(chain.key(rnd.proposers[0]), sealed.commit))
    chain.blocks_until(lambda s: s.round().phase != PROPOSE)
    chain.block(chain.tx(chain.key(rnd.proposers[0]), sealed.reveal))
    assert chain.round().phase == VOTE
    silent = rnd.proposers[1]
    assert stakes(chain)[silent] == before[silent] * (10_000 - chain.params.liveness_slash_bps) // 10_000
    assert list(chain.state().candidate().contributors) == [rnd.proposers[0]]


@pytest.mark.parametrize("drawn", [2, 1])
def test_the_spread_alone_condemns_a_lone_update_only_where_the_draw_seated_it_alone(drawn):
    chain = Chain(params=make_params(num_proposers=drawn))
    rnd = chain.start_round()
    lone, *deserters = rnd.proposers
    assert len(deserters) == drawn - 1
    sealed = {a: chain.sealed_update(rnd, a, chain.honest_update(), 10) for a in rnd.proposers}
    chain.commit(sealed, REVEAL_UPDATES)
    chain.block(chain.tx(chain.key(lone), sealed[lone].reveal))  # its round-mate never reveals
    chain.blocks_until(lambda s: s.round().phase == VOTE)
    before = stakes(chain)
    # every voter finds it harmful by 11-15%, alike: beyond three spreads, short of condemn_bps
    vote_all(chain, rnd, [[-1_500], [-1_300], [-1_100]])
    verdict = chain.state().round_by_id(rnd.id).verdicts[0]
    assert (verdict.proposer, verdict.included, verdict.contribution_bps) == (lone, False, -1_300)
    slash = before[lone] * chain.params.proposer_slash_bps // 10_000
    if deserters:  # nothing to point with or away from: left out, not condemned
        assert not verdict.condemned and stakes(chain)[lone] == before[lone]
    else:  # the draw seats one proposer a round: the spread is all the evidence there is
        assert verdict.condemned and stakes(chain)[lone] == before[lone] - slash


def test_round_without_updates_restarts():
    chain = Chain()
    rnd = chain.start_round()
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_NO_UPDATES
    assert chain.round().phase in (SELECT, PROPOSE)


def test_slash_below_threshold_removes_and_unbonds_the_rest():
    params = make_params(proposer_slash_bps=6_000)
    chain = Chain(participants=6, params=params)
    rnd = chain.start_round()
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, BAD]] * 3)
    for a in rnd.proposers:
        p = chain.state().participant(a)
        assert (p.stake, p.status) == (0, types_pb2.PARTICIPANT_STATUS_REMOVED)
        info = chain.query(f"/participant/{chain.key(a).bech32}")
        assert info.code == Code.OK
    removed = [dict(e.attributes) for e in chain.last.events if e.type == "removed"]
    assert {r["address"] for r in removed} == {chain.key(a).bech32 for a in rnd.proposers}
    assert {r["amount"] for r in removed} == {"800"}  # 2000 - 60% stays, unbonding
    nxt = chain.start_round()
    assert not (set(nxt.proposers) | set(nxt.voters)) & set(rnd.proposers)


def test_an_included_update_above_the_round_norm_bound_joins_the_fedavg_clipped_to_it():
    chain = Chain()
    rnd = chain.start_round()
    assert rnd.norm_bound == 0  # nothing revealed yet: round 1 is unbounded
    submit_all(chain, rnd, samples=(100, 300))  # updates of 0.01 and 0.02 everywhere
    vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
    rnd = chain.start_round()
    norms = sorted(h for r in chain.state().norm_history().rounds for h in r.norms)
    # a share (twice, by default) of the lower median of round 1's two norms
    assert len(norms) == 2 and rnd.norm_bound == norms[0] * chain.params.norm_bound_bps // 10_000
    assert chain.events("round_started")[0]["norm_bound"] == str(rnd.norm_bound)
    model_before = model_values(chain)
    step_before = [tensors.read(t) for t in chain.state().model().step]
    first, second = rnd.proposers
    chain.propose(rnd, {first: (chain.honest_update(0.01), 100), second: (chain.honest_update(0.08), 100)})
    chain.blocks_until(lambda s: s.round().phase == VOTE)
    updates = {a: chain.state().must_update(rnd.id, a) for a in rnd.proposers}
    assert updates[second].norm > rnd.norm_bound >= updates[first].norm
    # voters judge the update as sent: the candidate holds it whole
    candidate = tensors.read(chain.state().candidate().delta[0])
    sent = [[tensors.read(t) for t in updates[a].tensors] for a in rnd.proposers]
    assert (candidate == aggregation.fedavg([(100, sent[0]), (100, sent[1])])[0]).all()
    vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
    clipped = norm_bound.clip(sent[1], updates[second].norm, rnd.norm_bound)
    assert norm_bound.norm(clipped) <= rnd.norm_bound
    # the momentum (a share of round 1's move) is added whole: the bound limits the updates
    beta = chain.params.server_momentum_bps
    expected = aggregation.next_model(model_before, [(100, sent[0]), (100, clipped)], step_before, beta)
    assert all((v == m).all() for v, m in zip(model_values(chain), expected))
    assert [e["proposer"] for e in chain.events("update_clipped")] == [chain.key(second).bech32]


def test_with_the_norm_bound_off_an_included_update_joins_whole():
    chain = Chain(params=make_params(norm_bound_bps=0, server_momentum_bps=0))  # the move is the FedAvg alone
    for _ in range(2):
        rnd = chain.start_round()
        assert rnd.norm_bound == 0
        model_before = model_values(chain)
        submit_all(chain, rnd, samples=(100, 300))
        delta = [tensors.read(t) for t in chain.state().candidate().delta]
        vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
        expected = aggregation.apply_delta(model_before, delta)
        assert all((v == m).all() for v, m in zip(model_values(chain), expected))


# --- server momentum ---------------------------------------------------------------------------


def test_the_model_moves_by_the_fedavg_plus_a_share_of_its_last_move():
    """FedAvgM: the first move is the FedAvg alone (the genesis model has no step); each later one
    adds beta times the last move, rounded down, and the model records its move as its step. A
    rejected round moves nothing and keeps the step. (No norm bound: no update is scaled down.)"""
    chain = Chain(params=make_params(norm_bound_bps=0))
    beta = chain.params.server_momentum_bps
    assert beta == 5_000
    moves = []
    for _ in range(2):
        rnd = chain.start_round()
        assert len(chain.state().model().step) == (1 if moves else 0) * len(MODEL_SHAPES)
        before = model_values(chain)
        submit_all(chain, rnd, samples=(100, 300))
        fedavg = [tensors.read(t) for t in chain.state().candidate().delta]
        vote_all(chain, rnd, [[GOOD, GOOD]] * 3)
        model = chain.state().model()
        after = [tensors.read(t) for t in model.tensors]
        move = [a - b for a, b in zip(after, before)]
        assert all((tensors.read(s) == m).all() for s, m in zip(model.step, move))
        moves.append((fedavg, move))
    (fedavg_1, move_1), (fedavg_2, move_2) = moves
    assert all((m == f).all() for m, f in zip(move_1, fedavg_1))
    assert all((m == f + (beta * p) // 10_000).all() for m, f, p in zip(move_2, fedavg_2, move_1))

    rnd = chain.start_round()
    kept = chain.state().model()
    submit_all(chain, rnd)
    vote_all(chain, rnd, [[BAD, BAD]] * 3)
    assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_REJECTED
    assert chain.state().model() == kept


def test_momentum_rounds_down_and_the_step_saturates_like_a_tensor_in_state():
    step = [np.array([3, -3, 1, -1, 0], dtype=np.int64)]
    assert aggregation.momentum(step, 5_000)[0].tolist() == [1, -2, 0, -1, 0]  # floor, whatever the sign
    model = [np.array([10, 10, 10, 10, 10], dtype=np.int64)]
    assert aggregation.lookahead(model, [], 5_000)[0].tolist() == [10] * 5  # no move yet
    assert aggregation.lookahead(model, step, 0)[0].tolist() == [10] * 5  # momentum off
    assert aggregation.lookahead(model, step, 5_000)[0].tolist() == [11, 8, 10, 9, 10]
    assert aggregation.next_model(model, [(1, [np.zeros(5, np.int64)])], step, 5_000)[0].tolist() == [11, 8, 10, 9, 10]
    top, bottom = np.int64(tensors.INT32_MAX), np.int64(tensors.INT32_MIN)
    assert aggregation.last_step([np.array([bottom, top])], [np.array([top, bottom])])[0].tolist() == [top, bottom]


def test_genesis_refuses_momentum_whose_steps_never_fade():
    accounts = {bytes(20): 1}
    with pytest.raises(ValueError, match="server_momentum_bps must be below 10000"):
        genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(server_momentum_bps=10_000)))
    genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(server_momentum_bps=9_999)))


def test_genesis_refuses_an_alignment_bar_beyond_a_cosine():
    accounts = {bytes([1]) * 20: 10_000}
    with pytest.raises(ValueError, match="aligned_bps must be at most 10000"):
        genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(aligned_bps=10_001)))
    genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(aligned_bps=10_000)))
