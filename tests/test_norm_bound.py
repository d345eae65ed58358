"""The norm bound: a median of recent norms that a minority cannot move, and exact integer clipping."""

import numpy as np
import pytest
from chain import initial_model, make_params
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from abci_app import genesis, norm_bound
from abci_app.tensors import INT32_MAX, squared_norm
from flchain.v1 import types_pb2


def history(*rounds: list[int]) -> types_pb2.NormHistory:
    h = types_pb2.NormHistory()
    for i, norms in enumerate(rounds, start=1):
        for n in norms:
            norm_bound.remember(h, i, n, window=len(rounds))
    return h


def test_norm_is_the_exact_integer_l2_norm_rounded_up():
    assert norm_bound.norm([np.array([3, 0], np.int64), np.array([[4]], np.int64)]) == 5
    assert norm_bound.norm([np.array([1, 1], np.int64)]) == 2  # sqrt(2), rounded up


def test_bound_is_a_share_of_the_lower_median_of_every_remembered_norm():
    h = history([100, 900], [300, 200])  # sorted 100 200 300 900: lower median 200
    assert norm_bound.bound(h, 10_000) == 200
    assert norm_bound.bound(h, 20_000) == 400
    assert norm_bound.bound(h, 0) == 0  # the rule is off
    assert norm_bound.bound(types_pb2.NormHistory(), 10_000) == 0  # nothing revealed yet


def test_a_minority_of_huge_or_tiny_norms_does_not_move_the_bound():
    honest = [100, 110, 120, 130, 140]
    assert norm_bound.bound(history(honest + [10**9] * 4), 10_000) == 140
    assert norm_bound.bound(history(honest + [1] * 4), 10_000) == 100


def test_remember_keeps_the_last_window_rounds_that_had_updates():
    h = types_pb2.NormHistory()
    for round_id, n in [(1, 10), (1, 11), (3, 30), (4, 40), (7, 70)]:
        norm_bound.remember(h, round_id, n, window=3)
    assert [(r.round, list(r.norms)) for r in h.rounds] == [(3, [30]), (4, [40]), (7, [70])]


def test_clip_leaves_updates_within_the_bound_unchanged():
    arrays = [np.array([3, -4], np.int64)]
    assert (norm_bound.clip(arrays, 5, 5)[0] == arrays[0]).all()
    assert (norm_bound.clip(arrays, 5, 0)[0] == arrays[0]).all()  # no bound


def test_clip_scales_toward_zero_keeping_signs():
    clipped = norm_bound.clip([np.array([30, -40, 7], np.int64)], 50, 10)
    assert clipped[0].tolist() == [6, -8, 1]  # 7 * 10 / 50 = 1.4, rounded toward zero


@given(
    # norms below 2^32, as max_update_norm guarantees (the largest are tested below)
    hnp.arrays(np.int64, st.integers(1, 64), elements=st.integers(-(2**28), 2**28)),
    st.integers(1, 10_000),
)
def test_a_clipped_update_never_exceeds_the_bound_and_keeps_its_direction(values, share_bps):
    proposed = norm_bound.norm([values])
    limit = max(1, proposed * share_bps // 10_000)
    clipped = norm_bound.clip([values], proposed, limit)[0]
    assert squared_norm([clipped]) <= limit**2
    assert (np.sign(clipped) * np.sign(values) >= 0).all()  # no coordinate changes sign
    # rounding toward zero loses under 1 per coordinate: the clipped norm is within sqrt(n) of the bound
    if proposed > limit:
        assert norm_bound.norm([clipped]) >= limit - np.sqrt(values.size) - 1


@pytest.mark.parametrize("limit", [2**32 - 2, 2**31])
def test_clip_cannot_overflow_at_the_largest_allowed_norm(limit):
    values = np.array([INT32_MAX, -INT32_MAX], np.int64)  # norm ~ 2^31.5, max_update_norm < 2^32
    proposed = norm_bound.norm([values])
    clipped = norm_bound.clip([values], proposed, min(limit, proposed - 1))[0]
    assert squared_norm([clipped]) <= min(limit, proposed - 1) ** 2 and clipped[0] > 0 > clipped[1]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"max_update_norm": 2**32}, "max_update_norm must be in"),
        ({"norm_bound_bps": 100_001}, "norm_bound_bps must be at most"),
        ({"norm_bound_bps": 10_000, "norm_window_rounds": 0}, "norm_window_rounds must be in"),
        ({"norm_bound_bps": 10_000, "norm_window_rounds": 101}, "norm_window_rounds must be in"),
    ],
)
def test_genesis_refuses_norm_params_the_rule_cannot_run_on(overrides, reason):
    accounts = {bytes(20): 1}
    with pytest.raises(ValueError, match=reason):
        genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(**overrides)))
    genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(norm_bound_bps=0, norm_window_rounds=0)))
