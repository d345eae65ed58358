"""The sample bound: an update weighs at most a share of the median recent claim, which a minority
cannot move."""

import pytest
from chain import initial_model, make_params
from hypothesis import given
from hypothesis import strategies as st

from abci_app import genesis, sample_bound
from flchain.v1 import types_pb2


def history(*rounds: list[int]) -> types_pb2.SampleHistory:
    h = types_pb2.SampleHistory()
    for i, claims in enumerate(rounds, start=1):
        for c in claims:
            sample_bound.remember(h, i, c, window=len(rounds))
    return h


def test_bound_is_a_share_of_the_lower_median_of_every_remembered_claim():
    h = history([100, 900], [300, 200])  # sorted 100 200 300 900: lower median 200
    assert sample_bound.bound(h, 10_000) == 200
    assert sample_bound.bound(h, 20_000) == 400
    assert sample_bound.bound(h, 0) == 0  # the rule is off
    assert sample_bound.bound(types_pb2.SampleHistory(), 10_000) == 0  # nothing revealed yet


def test_weight_is_the_claim_at_most_the_bound():
    assert sample_bound.weight(150, 200) == 150
    assert sample_bound.weight(1_000_000, 200) == 200
    assert sample_bound.weight(1_000_000, 0) == 1_000_000  # no bound


def test_remember_keeps_the_round_and_the_window_before_it():
    h = types_pb2.SampleHistory()
    for round_id, claim in [(1, 10), (1, 11), (3, 30), (4, 40), (7, 70), (7, 71)]:
        sample_bound.remember(h, round_id, claim, window=2)
    assert [(r.round, list(r.claims)) for r in h.rounds] == [(3, [30]), (4, [40]), (7, [70, 71])]


@given(
    honest=st.lists(st.integers(1, 10_000), min_size=5, max_size=30),
    inflated=st.integers(1, 10**6),
    share=st.integers(1, 100_000),
)
def test_fewer_inflated_claims_than_honest_ones_cannot_raise_the_bound_above_the_largest_honest_one(
    honest, inflated, share
):
    """However much a minority claims, the median stays at or below the largest honest claim."""
    attackers = [inflated] * ((len(honest) - 1) // 2)
    assert sample_bound.bound(history(honest + attackers), share) <= max(1, max(honest) * share // 10_000)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sample_bound_bps": 100_001}, "sample_bound_bps must be at most"),
        ({"sample_bound_bps": 10_000, "norm_bound_bps": 0, "norm_window_rounds": 101}, "norm_window_rounds must be"),
    ],
)
def test_genesis_refuses_sample_params_the_rule_cannot_run_on(overrides, reason):
    accounts = {bytes(20): 1}
    with pytest.raises(ValueError, match=reason):
        genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(**overrides)))
    # the round's own claims alone (no window) is a bound too
    params = make_params(sample_bound_bps=10_000, norm_bound_bps=0, norm_window_rounds=0)
    genesis.validate(genesis.build(accounts, {}, initial_model(), params))
