"""The copy rule: an update that points where another proposer's update of a recent round pointed is
condemned, whatever the ballots say; fingerprints are exact, or a count sketch for large models."""

import numpy as np
import pytest
from chain import MODEL_SHAPES, Chain, initial_model, make_params

from abci_app import copies, genesis, tensors
from abci_app.codes import Code
from abci_app.judgement import UpdateVerdict
from flchain.v1 import types_pb2

LOSS, GOOD = 10_000, 1_000
DEFAULTS = genesis.default_params()
RULE = {"copy_cosine_bps": DEFAULTS.copy_cosine_bps, "copy_window_rounds": DEFAULTS.copy_window_rounds}


def fixed_update(values: np.ndarray, proposer: bytes = b"p" * 20, round_id: int = 1) -> types_pb2.Update:
    return types_pb2.Update(round=round_id, proposer=proposer, tensors=[tensors.encode("w", values.astype(np.int64))])


def random_update(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    return [(name, rng.normal(0, 0.01, shape).astype(np.float32)) for name, shape in MODEL_SHAPES]


# --- fingerprints and their cosines ------------------------------------------------------------


def test_a_small_update_is_its_own_fingerprint_and_cosines_are_exact():
    values = np.array([3, -4, 0, 12], dtype=np.int64)
    mine = copies.fingerprint(fixed_update(values))
    assert mine.tolist() == values.tolist()
    assert copies.cosine_bps(mine, mine) == 10_000
    assert copies.cosine_bps(mine, -mine) == -10_000
    assert copies.cosine_bps(mine, np.array([4, 3, 0, 0])) == 0  # orthogonal
    assert copies.cosine_bps(mine, np.zeros(4, np.int64)) == 0
    assert copies.cosine_bps(mine, np.array([1, 2])) == 0  # another model's fingerprint


def test_a_large_update_is_sketched_deterministically_and_keeps_its_cosines():
    rng = np.random.default_rng(0)
    original = rng.integers(-(2**16), 2**16, 200_000)
    copy = (original * (1 + rng.normal(0, 0.01, original.size))).astype(np.int64)
    other = rng.integers(-(2**16), 2**16, 200_000)
    sketched = copies.fingerprint(fixed_update(original))
    assert sketched.size == copies.SIZE
    assert (copies.fingerprint(fixed_update(original)) == sketched).all()
    assert copies.cosine_bps(sketched, copies.fingerprint(fixed_update(copy))) >= 9_900
    assert abs(copies.cosine_bps(sketched, copies.fingerprint(fixed_update(other)))) < 300


def test_fingerprints_of_extreme_values_stay_exact_in_int64():
    top = np.full(100_000, tensors.INT32_MAX, dtype=np.int64)
    mine = copies.fingerprint(fixed_update(top))
    assert int(np.abs(mine).max()) < 2**copies.VALUE_BITS
    assert copies.cosine_bps(mine, mine) == 10_000


def test_the_sketch_sums_exactly_whatever_the_values():
    """The sketch adds in float64 (np.bincount): exact only while every sum stays an integer below
    2^53. Exact sums are linear, so any rounding would show."""
    rng = np.random.default_rng(4)
    ones = np.ones(1_000_000, dtype=np.int64)
    top = ones * tensors.INT32_MAX
    assert (copies._sketch(top) == copies._sketch(ones) * tensors.INT32_MAX).all()
    other = rng.integers(-tensors.INT32_MAX, tensors.INT32_MAX, ones.size)
    assert (copies._sketch(top) + copies._sketch(other) == copies._sketch(top + other)).all()


def test_a_copy_is_found_among_other_proposers_updates_only():
    rng = np.random.default_rng(1)
    original = rng.integers(-500, 500, 16)
    earlier = copies.remember(fixed_update(original, b"a" * 20))
    again = copies.remember(fixed_update(original + rng.integers(-3, 3, 16), b"b" * 20, round_id=2))
    own = copies.remember(fixed_update(original, b"a" * 20, round_id=2))
    fresh = copies.remember(fixed_update(rng.integers(-500, 500, 16), b"c" * 20, round_id=2))
    found = copies.find([earlier, again, own, fresh], 2, 9_500)
    assert list(found) == [b"b" * 20] and found[b"b" * 20].of == b"a" * 20 and found[b"b" * 20].round == 1
    assert copies.find([earlier, again], 2, 0) == {}  # the rule off
    verdict = UpdateVerdict(
        b"b" * 20,
        included=True,
        condemned=False,
        harmful_bps=0,
        contribution_bps=900,
        alignment_bps=0,
        two_thirds_bps=400,
    )
    condemned = copies.condemn(verdict, found[b"b" * 20])
    assert (condemned.included, condemned.condemned, condemned.copy_of) == (False, True, b"a" * 20)


# --- the rule on chain -----------------------------------------------------------------------------


def play(chain: Chain, updates: dict[bytes, list], scores: int = GOOD) -> types_pb2.Round:
    """One round: the given updates (every drawn proposer's), every voter finds each helpful."""
    rnd = chain.round()
    out = chain.propose(rnd, {a: (u, 100) for a, u in updates.items()})
    assert [r.code for r in out.tx_results] == [Code.OK] * len(updates)
    chain.blocks_until(lambda s: s.round().phase == types_pb2.PHASE_VOTE)
    chain.cast(rnd, {v: (LOSS, [scores] * len(updates)) for v in rnd.voters})
    chain.blocks_until(lambda s, drawn=rnd.id: s.round().id != drawn)
    return chain.state().round_by_id(rnd.id)


def test_an_update_copied_from_an_earlier_round_is_condemned_whatever_the_ballots_say():
    rng = np.random.default_rng(2)
    chain = Chain(participants=8, params=make_params(**RULE))
    rnd = chain.start_round()
    sent = {a: random_update(rng) for a in rnd.proposers}
    first = play(chain, sent)
    assert [v.included for v in first.verdicts] == [True, True]
    assert {f.round for f in chain.state().fingerprints()} == {first.id}

    rnd = chain.start_round()
    copier, other = rnd.proposers
    victim = next(a for a in first.proposers if a != copier)
    perturbed = [(n, v * (1 + rng.normal(0, 0.01, v.shape)).astype(np.float32)) for n, v in sent[victim]]
    # a proposer drawn again may send much the same step as before: not a copy of anyone
    again = sent[other] if other in sent else random_update(rng)
    stakes = {a: chain.state().must_participant(a).stake for a in rnd.proposers}
    second = play(chain, {copier: perturbed, other: again})
    verdicts = {v.proposer: v for v in second.verdicts}
    assert (verdicts[copier].condemned, verdicts[copier].included) == (True, False)
    assert (verdicts[copier].copy_of, verdicts[copier].copy_of_round) == (victim, first.id)
    assert verdicts[copier].contribution_bps > 0  # the voters found it helpful
    assert (verdicts[other].condemned, verdicts[other].included, verdicts[other].copy_of) == (False, True, b"")
    slashed = stakes[copier] * (10_000 - chain.params.proposer_slash_bps) // 10_000
    assert chain.state().must_participant(copier).stake == slashed
    state = chain.state()
    history = state.history(copier, state.must_participant(copier))
    assert [e.reason for e in history if e.round == second.id] == ["update_copied"]
    copied = chain.events("update_copied")
    assert len(copied) == 1 and copied[0]["copy_of_round"] == str(first.id)
    assert int(copied[0]["cosine_bps"]) >= 9_900
    # the copy's fingerprint is forgotten: the victim's next step, much like its last, cannot read
    # as a copy of the copier's
    kept = {(f.round, f.proposer) for f in chain.state().fingerprints()}
    assert (second.id, copier) not in kept and {(first.id, victim), (second.id, other)} <= kept


def test_fingerprints_are_kept_for_the_window_only():
    rng = np.random.default_rng(3)
    chain = Chain(participants=8, params=make_params(copy_cosine_bps=DEFAULTS.copy_cosine_bps, copy_window_rounds=2))
    played = []
    for _ in range(4):
        rnd = chain.start_round()
        played.append((rnd.id, {a: random_update(rng) for a in rnd.proposers}))
        play(chain, played[-1][1])
    assert sorted({f.round for f in chain.state().fingerprints()}) == [played[2][0], played[3][0]]
    # a copy of round 1's update is older than the window: nothing to compare it with
    rnd = chain.start_round()
    stale = next(u for a, u in played[0][1].items() if a not in rnd.proposers[:1])
    fresh = random_update(rng)
    finished = play(chain, {rnd.proposers[0]: stale, rnd.proposers[1]: fresh})
    assert not any(v.condemned for v in finished.verdicts)


def test_genesis_refuses_a_copy_rule_it_cannot_run():
    accounts = {bytes(20): 1}
    for overrides, reason in [
        ({"copy_cosine_bps": 10_001}, "copy_cosine_bps must be at most 10000"),
        ({"copy_cosine_bps": 9_500, "copy_window_rounds": 0}, "copy_window_rounds must be in"),
    ]:
        with pytest.raises(ValueError, match=reason):
            genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(**overrides)))
    genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(copy_cosine_bps=0, copy_window_rounds=0)))
