"""Property tests: exact, order-independent aggregation; random tx sequences never break the machine."""

import hashlib
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from chain import MODEL_SHAPES, Chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abci_app import aggregate_reports, aggregation, copies, rounds, sealing, tensors, wire
from abci_app.machine import StateMachine
from abci_app.store import SqliteStore
from client import tx as txb
from flchain.v1 import tx_pb2, types_pb2

int32s = st.integers(-(2**31), 2**31 - 1)


@st.composite
def updates(draw):
    size = draw(st.integers(1, 6))
    count = draw(st.integers(1, 8))
    return [
        (draw(st.integers(1, 10**6)), [np.array(draw(st.lists(int32s, min_size=size, max_size=size)), dtype=np.int64)])
        for _ in range(count)
    ]


@given(updates(), st.randoms())
def test_fedavg_is_exact_and_order_independent(ups, rnd):
    result = aggregation.fedavg(ups)[0]
    total = sum(n for n, _ in ups)
    for i, value in enumerate(result):
        exact = Fraction(sum(n * int(t[0][i]) for n, t in ups), total)
        assert Fraction(int(value)) - Fraction(1, 2) <= exact < Fraction(int(value)) + Fraction(1, 2)
    shuffled = list(ups)
    rnd.shuffle(shuffled)
    assert (aggregation.fedavg(shuffled)[0] == result).all()


@given(
    st.dictionaries(st.binary(min_size=20, max_size=20), st.integers(0, 4), min_size=1, max_size=30),
    st.binary(min_size=32, max_size=32),
)
def test_the_draw_never_seats_a_proposer_with_more_turns_than_one_left_out(turns, seed):
    proposers, voters = rounds.draw(turns, seed, 3, 13)
    left_out = set(turns) - set(proposers)
    assert proposers
    assert not left_out or max(turns[a] for a in proposers) <= min(turns[a] for a in left_out)
    assert not set(proposers) & set(voters) and set(proposers) | set(voters) <= set(turns)


@given(st.lists(int32s, max_size=50))
def test_squared_norm_is_exact(values):
    assert tensors.squared_norm([np.array(values, dtype=np.int64)]) == sum(v * v for v in values)


@given(st.lists(st.floats(-30_000, 30_000, width=32), min_size=1, max_size=20))
def test_float_to_fixed_conversion_is_exact_round_half_even(values):
    t = wire.encode_float("x", np.array(values, dtype=np.float32))
    fixed = wire.decode_tensor(t, 16)
    assert fixed.tolist() == [round(float(np.float32(v)) * 2**16) for v in values]


# --- random tx sequences -------------------------------------------------------------------------

KEYS = 7
KEY_ADDRESSES = [k.address for k in Chain(participants=5, extra_accounts=2).keys]


SALT = b"p" * 32


@st.composite
def messages(draw, round_hint: int, sender: bytes):
    """A random message; commitments and reveals of the same sender and round use one salt and a
    small set of contents, so some reveals match their commitment and many do not."""
    kind = draw(st.sampled_from(["bond", "unbond", "update", "ballot", "garbage_update"]))
    round_id = draw(st.sampled_from([round_hint, round_hint + 1, 0, 1, 2, 3]))
    if kind == "bond":
        return txb.bond(draw(st.sampled_from([0, 1, 999, 1_000, 5_000, 10**9])))
    if kind == "unbond":
        return txb.unbond(draw(st.sampled_from([0, 1, 500, 2_000, 10**9])))
    commit = draw(st.booleans())
    if kind == "ballot":
        scores = draw(st.lists(st.sampled_from([-30_000, 0, 500]), max_size=3))  # right or wrong count
        loss, start_loss = (draw(st.sampled_from([0, 1, 10_000, 10**9 + 1])) for _ in range(2))
        sealed = txb.sealed_ballot(sender, round_id, loss, scores, SALT, start_loss=start_loss)
        return sealed.commit if commit else sealed.reveal
    scale = draw(st.sampled_from([0.0, 0.01, -1.0, 80.0, float("nan"), float("inf"), 1e9]))
    update = [(name, np.full(shape, scale, dtype=np.float32)) for name, shape in MODEL_SHAPES]
    sealed = txb.sealed_update(sender, round_id, update, draw(st.sampled_from([0, 1, 50, 10**7])), SALT)
    if kind == "garbage_update":
        sealed.reveal.submit_update.tensors[0].values = draw(st.binary(max_size=64))
    return sealed.commit if commit and kind == "update" else sealed.reveal


@st.composite
def tx_blocks(draw):
    blocks = []
    for height in range(draw(st.integers(1, 14))):
        block = []
        for _ in range(draw(st.integers(0, 4))):
            sender = draw(st.integers(0, KEYS - 1))
            block.append(
                (
                    sender,
                    draw(st.lists(messages(1 + height // 6, KEY_ADDRESSES[sender]), min_size=1, max_size=2)),
                    draw(st.sampled_from(["next", "next", "next", "stale", "garbage"])),
                )
            )
        blocks.append(block)
    return blocks


def supply(chain: Chain) -> int:
    state = chain.state()
    return (
        sum(state.account(k.address).balance for k in chain.keys)
        + sum(p.stake for p in state.participants())
        + sum(e.amount for _, e in state.unbondings())
    )


def run_blocks(chain: Chain, blocks) -> list[bytes]:
    hashes, expected_supply = [], supply(chain) if chain.height else None
    for block in blocks:
        raws = []
        for sender, msgs, nonce_mode in block:
            key = chain.keys[sender]
            if nonce_mode == "garbage":
                raws.append(hashlib.sha256(repr(msgs).encode()).digest())
            elif nonce_mode == "stale":
                raws.append(chain.tx(key, *msgs, nonce=max(0, chain.nonces[key.address] - 1)))
            else:
                raws.append(chain.tx(key, *msgs))
            chain.machine.check_tx(raws[-1])  # must never raise either
        out = chain.block(*raws)
        # a tx that failed before its nonce was consumed leaves the client's counter ahead: resync it
        for k in chain.keys:
            chain.nonces[k.address] = chain.state().account(k.address).nonce
        hashes.append(out.app_hash)
        check_invariants(chain)
        minted = sum(
            int(dict(e.attributes)["amount"])
            for r in [*out.tx_results, None]
            for e in (out.events if r is None else r.events)
            if e.type == "rewarded"
        )
        burned = sum(int(dict(e.attributes)["amount"]) for e in out.events if e.type == "slashed")
        if expected_supply is not None:
            expected_supply += minted - burned
            assert supply(chain) == expected_supply
        expected_supply = supply(chain)
    return hashes


def check_invariants(chain: Chain) -> None:
    state = chain.state()
    params = state.params()
    for p in state.participants():
        if p.status == types_pb2.PARTICIPANT_STATUS_BONDED:
            assert p.stake >= params.min_stake
        else:
            assert p.stake == 0
    rnd = state.round()
    assert not set(rnd.proposers) & set(rnd.voters)
    assert set(rnd.submitted) <= set(rnd.proposers)
    assert {b.voter for b in rnd.ballots} <= set(rnd.voters)
    assert len({b.voter for b in rnd.ballots}) == len(rnd.ballots)
    update_committers = [c.sender for c in rnd.update_commitments]
    ballot_committers = [c.sender for c in rnd.ballot_commitments]
    assert set(update_committers) <= set(rnd.proposers) and len(set(update_committers)) == len(update_committers)
    assert set(ballot_committers) <= set(rnd.voters) and len(set(ballot_committers)) == len(ballot_committers)
    assert set(rnd.submitted) <= set(update_committers) and {b.voter for b in rnd.ballots} <= set(ballot_committers)
    voting = rnd.phase in (types_pb2.PHASE_VOTE, types_pb2.PHASE_REVEAL_BALLOTS)
    assert (state.candidate() is not None) == voting


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx_blocks())
def test_random_tx_sequences_never_crash_and_replicas_agree(blocks):
    memory = Chain(participants=5, extra_accounts=2)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "state.sqlite")
        disk = Chain(participants=5, extra_accounts=2, machine=StateMachine(store))
        assert run_blocks(memory, blocks) == run_blocks(disk, blocks)
        store.close()


def test_undecodable_tx_bodies_are_refused_not_raised():
    chain = Chain()
    chain.block()
    for raw in [b"", b"\x00", tx_pb2.Tx(body_bytes=b"\xff\xff", public_key=bytes(32)).SerializeToString()]:
        assert chain.machine.check_tx(raw).code != 0


digests = st.binary(min_size=32, max_size=32)


@given(st.integers(0, 2**64 - 1), st.binary(min_size=20, max_size=20), digests, digests, st.data())
def test_a_commitment_binds_kind_round_sender_salt_and_content(round_id, sender, salt, content, data):
    base = (sealing.UPDATE, round_id, sender, salt, content)
    digest = sealing.commitment(*base)
    assert len(digest) == 32 and digest == sealing.commitment(*base)
    position = data.draw(st.integers(0, 4))
    changed = list(base)
    if position == 0:
        changed[0] = sealing.BALLOT
    elif position == 1:
        changed[1] = (round_id + 1) % 2**64
    else:
        flip = data.draw(st.integers(0, len(base[position]) - 1))
        value = bytearray(base[position])
        value[flip] ^= 1
        changed[position] = bytes(value)
    assert sealing.commitment(*changed) != digest


@given(st.integers(1, 10**9), st.integers(1, 10**9), st.lists(st.integers(-(10**9), 10**9), max_size=4), st.data())
def test_a_ballot_digest_changes_with_any_loss_score_or_its_order(loss, start, scores, data):
    digest = sealing.ballot_digest(loss, start, scores)
    assert sealing.ballot_digest(loss + 1, start, scores) != digest
    assert sealing.ballot_digest(loss, start + 1, scores) != digest
    if loss != start:  # the two losses are not interchangeable
        assert sealing.ballot_digest(start, loss, scores) != digest
    if scores:
        i = data.draw(st.integers(0, len(scores) - 1))
        assert sealing.ballot_digest(loss, start, scores[:i] + [scores[i] + 1] + scores[i + 1 :]) != digest
        assert sealing.ballot_digest(loss, start, scores[:-1]) != digest


@given(
    st.lists(st.integers(1, 10_000), min_size=1, max_size=7),
    st.data(),
)
def test_an_aggregate_is_adopted_only_by_more_than_half_of_all_aggregators_and_their_stake(weights, data):
    """Silent aggregators count against a report, by head and by stake; a report agrees only on the
    same file and norms, and the order of reports changes nothing."""
    aggregators = [bytes([i]) * 20 for i in range(len(weights))]
    stakes = dict(zip(aggregators, weights))
    file_a, file_b = (hashlib.sha256(bytes([k])).digest() for k in range(2))
    pool = [(file_a, 100, (300, 500)), (file_a, 100, (300, 501)), (file_b, 101, (300, 500))]
    reporters = data.draw(st.lists(st.sampled_from(aggregators), unique=True))
    reports = [
        types_pb2.AggregateReport(sender=a, digest=d, size=s, norms=n)
        for a, (d, s, n) in zip(
            reporters, data.draw(st.lists(st.sampled_from(pool), min_size=len(reporters), max_size=len(reporters)))
        )
    ]
    winner = aggregate_reports.majority_report(reports, stakes)
    backers = {key: [r.sender for r in reports if (r.digest, r.size, tuple(r.norms)) == key] for key in pool}
    expected = [
        key
        for key, senders in backers.items()
        if 2 * sum(stakes[s] for s in senders) > sum(weights) and 2 * len(senders) > len(weights)
    ]
    assert ([winner] if winner else []) == expected
    assert aggregate_reports.majority_report(data.draw(st.permutations(reports)), stakes) == winner


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(1e-3, 1.0), st.floats(1e-3, 1.0)), min_size=2, max_size=4))
def test_a_round_never_moves_the_model_further_than_its_norm_bound(scales):
    """Whatever the updates' sizes, an accepted round moves the global model by at most its bound
    (a weighted mean of updates clipped to it), plus FedAvg's rounding of half a unit per value,
    beyond the server momentum, which repeats a share of the last move whatever the updates; and
    the model records that move as its step."""
    chain = Chain()
    beta = chain.params.server_momentum_bps
    for first, second in scales:
        rnd = chain.start_round()
        model = chain.state().model()
        before = [tensors.read(t) for t in model.tensors]
        momentum = aggregation.momentum([tensors.read(t) for t in model.step], beta) or [0 * m for m in before]
        a, b = rnd.proposers
        chain.propose(rnd, {a: (chain.honest_update(first), 10), b: (chain.honest_update(-second), 30)})
        chain.blocks_until(lambda s: s.round().phase == types_pb2.PHASE_VOTE)
        ballots = chain.cast(rnd, {v: (10_000, [500, 500]) for v in rnd.voters})
        assert all(r.code == 0 for r in ballots.tx_results)
        chain.blocks_until(lambda s, drawn=rnd.id: s.round().id != drawn)
        assert chain.state().round_by_id(rnd.id).outcome == types_pb2.OUTCOME_ACCEPTED
        after = chain.state().model()
        steps = zip(after.step, after.tensors, before, strict=True)
        assert all(np.array_equal(tensors.read(s), tensors.read(t) - m) for s, t, m in steps)
        moved = [tensors.read(t) - m - p for t, m, p in zip(after.tensors, before, momentum)]
        if rnd.norm_bound:
            size = sum(m.size for m in moved)
            assert np.sqrt(float(sum(int((m**2).sum()) for m in moved))) <= rnd.norm_bound + np.sqrt(size) / 2


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=1, max_size=40),
    st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=1, max_size=40),
    st.integers(1, 2**10),
)
def test_copy_fingerprint_cosines_are_symmetric_bounded_and_blind_to_scale(a, b, factor):
    """Whatever the values (within int32), a cosine of two fingerprints is the same both ways, within
    [-1, 1], and a positive multiple of an update (within int32) has its direction exactly."""
    size = min(len(a), len(b))
    first, second = (np.array(v[:size], dtype=np.int64) for v in (a, b))

    def printed(values):
        return copies.fingerprint(types_pb2.Update(tensors=[tensors.encode("w", values)]))

    x, y = printed(first), printed(second)
    assert copies.cosine_bps(x, y) == copies.cosine_bps(y, x)
    assert -10_000 <= copies.cosine_bps(x, y) <= 10_000
    scaled = np.clip(first * factor, tensors.INT32_MIN, tensors.INT32_MAX)
    if (scaled == first * factor).all() and first.any():
        assert copies.cosine_bps(x, printed(scaled)) >= 9_999
