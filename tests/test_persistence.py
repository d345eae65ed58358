"""SQLite persistence: a restarted machine resumes at the committed height with the same app hash."""

import numpy as np
from chain import Chain

from abci_app import tensors
from abci_app.machine import StateMachine
from abci_app.queries import answer
from abci_app.store import SqliteStore
from client import tx as txb


def drive(chain: Chain, blocks: int) -> list[bytes]:
    """Blocks in which every drawn proposer commits and reveals an update and every voter a ballot
    finding every update helpful."""
    hashes = []
    for _ in range(blocks):
        txs = chain.duty_txs() if chain.height else []
        hashes.append(chain.block(*txs).app_hash)
    return hashes


def test_restart_resumes_with_same_height_hash_and_future(tmp_path):
    reference = Chain()
    expected = drive(reference, 30)

    path = tmp_path / "state.sqlite"
    first = Chain(machine=StateMachine(SqliteStore(path)))
    assert drive(first, 12) == expected[:12]
    first.machine.store.close()

    resumed = StateMachine(SqliteStore(path))
    assert (resumed.height, resumed.app_hash) == (12, expected[11])
    assert (
        answer(resumed.committed_state(), "/model").value
        == answer(StateMachine(SqliteStore(path)).committed_state(), "/model").value
    )
    # Continue on the restarted machine with the same client-side view (keys and nonces).
    first.machine = resumed
    assert drive(first, 18) == expected[12:]
    assert resumed.committed_state().model().version == reference.state().model().version >= 2


def test_crash_between_finalize_and_commit_replays_identically(tmp_path):
    path = tmp_path / "state.sqlite"
    chain = Chain(machine=StateMachine(SqliteStore(path)))
    drive(chain, 5)
    height_before, hash_before = chain.machine.height, chain.machine.app_hash
    txs = [chain.tx(chain.keys[-1], txb.bond(1_000))]
    crashed = chain.machine.finalize_block(
        txs, 6, b"\x06" * 32, chain.block_time_ms(6)
    ).app_hash  # no commit: the process dies
    chain.machine.store.close()

    restarted = StateMachine(SqliteStore(path))
    assert (restarted.height, restarted.app_hash) == (height_before, hash_before)
    assert restarted.finalize_block(txs, 6, b"\x06" * 32, chain.block_time_ms(6)).app_hash == crashed
    restarted.commit()
    assert restarted.committed_state().participant(chain.keys[-1].address).stake == 1_000


def test_app_hash_commits_to_every_change():
    a, b = Chain(), Chain()
    a.block(), b.block()
    a.block(a.tx(a.keys[-1], txb.bond(1_000)))
    b.block(b.tx(b.keys[-1], txb.bond(1_001)))
    assert a.machine.app_hash != b.machine.app_hash
    c = Chain(balance=10_001)
    assert c.machine.init_chain(c.genesis, "x") != a.machine.init_chain(a.genesis, "x")


def test_model_tensor_roundtrip_is_bit_exact(tmp_path):
    chain = Chain(machine=StateMachine(SqliteStore(tmp_path / "s.sqlite")))
    chain.block()
    model = chain.state().model()
    genesis_fixed = [
        np.rint(np.ldexp(np.frombuffer(t.values, "<f4").astype(np.float64), 16)) for t in chain.genesis.model
    ]
    assert all((tensors.read(t).ravel() == g).all() for t, g in zip(model.tensors, genesis_fixed))
