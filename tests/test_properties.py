"""Property tests: exact, order-independent aggregation; random tx sequences never break the machine."""

import hashlib
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from chain import MODEL_SHAPES, Chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abci_app import aggregation, tensors, wire
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


@st.composite
def messages(draw, round_hint: int):
    kind = draw(st.sampled_from(["bond", "unbond", "update", "vote", "garbage_update"]))
    round_id = draw(st.sampled_from([round_hint, round_hint + 1, 0, 1, 2, 3]))
    if kind == "bond":
        return txb.bond(draw(st.sampled_from([0, 1, 999, 1_000, 5_000, 10**9])))
    if kind == "unbond":
        return txb.unbond(draw(st.sampled_from([0, 1, 500, 2_000, 10**9])))
    if kind == "vote":
        scores = draw(st.lists(st.integers(-30_000, 30_000), max_size=3))  # right or wrong count
        return txb.vote(round_id, draw(st.sampled_from([0, 1, 10_000, 10**9 + 1])), scores)
    scale = draw(st.sampled_from([0.0, 0.01, -1.0, 80.0, float("nan"), float("inf"), 1e9]))
    update = [(name, np.full(shape, scale, dtype=np.float32)) for name, shape in MODEL_SHAPES]
    msg = txb.submit_update(round_id, update, draw(st.sampled_from([0, 1, 50, 10**7])))
    if kind == "garbage_update":
        msg.submit_update.tensors[0].values = draw(st.binary(max_size=64))
    return msg


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
                    draw(st.lists(messages(1 + height // 4), min_size=1, max_size=2)),
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
    assert (state.candidate() is not None) == (rnd.phase == types_pb2.PHASE_VOTE)


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
