"""Chain benchmarks (figures, not pass/fail): run `python benchmarks/bench_chain.py`.

1. FedAvg aggregation throughput, in parameters/s, for 20 updates of 100k parameters.
2. CheckTx, ProcessProposal and FinalizeBlock + Commit throughput, in update bytes/s, for one node's application
   (SQLite store) receiving a block with 20 signed updates of 100k float32 parameters (their reveals:
   the commitments are sent in an earlier block).
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from abci_app import aggregation, genesis
from abci_app.machine import StateMachine
from abci_app.store import SqliteStore
from client import tx as txb
from client.in_process import InProcessChain
from client.keys import Key
from flchain.v1 import types_pb2


def bench_fedavg(updates: int, params: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    data = [
        (int(rng.integers(1, 1000)), [rng.integers(-(2**20), 2**20, params, dtype=np.int64)]) for _ in range(updates)
    ]
    best = min(_timed(lambda: aggregation.fedavg(data)) for _ in range(repeats))
    return updates * params / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_block(updates: int, params: int) -> dict[str, float]:
    keys = [Key.from_seed(f"p{i}", hashlib.sha256(b"bench%d" % i).digest()) for i in range(updates + 3)]
    p = genesis.default_params()
    p.num_proposers, p.num_voters, p.min_participants = updates, 3, updates + 3
    p.max_tx_bytes = 8 << 20
    p.max_update_norm = 2**40
    model = [("w", np.zeros(params, np.float32))]
    with tempfile.TemporaryDirectory() as tmp:
        chain = InProcessChain(
            genesis.build({k.address: 10_000 for k in keys}, {k.address: 2_000 for k in keys}, model, p),
            "bench",
            machine=StateMachine(SqliteStore(Path(tmp) / "state.sqlite")),
        )
        chain.block()  # the draw happens at the end of block 1
        rnd = chain.round()
        by_address = {k.address: k for k in keys}
        rng = np.random.default_rng(1)
        sealed = {
            a: txb.sealed_update(a, rnd.id, [("w", rng.normal(0, 0.01, params).astype(np.float32))], 100, b"s" * 32)
            for a in rnd.proposers
        }
        chain.block(*[chain.sign(by_address[a], s.commit) for a, s in sealed.items()])
        assert chain.round().phase == types_pb2.PHASE_REVEAL_UPDATES
        txs = [chain.sign(by_address[a], s.reveal) for a, s in sealed.items()]
        size = sum(len(t) for t in txs)
        start = time.perf_counter()
        assert all(chain.machine.check_tx(t).code == 0 for t in txs)
        check = time.perf_counter() - start
        start = time.perf_counter()
        assert all(chain.machine.verify_stateless(t).code == 0 for t in txs)
        process = time.perf_counter() - start
        start = time.perf_counter()
        out = chain.block(*txs)
        finalize = time.perf_counter() - start
        assert all(r.code == 0 for r in out.tx_results)
        # Closing REVEAL_UPDATES aggregates the updates into the candidate.
        start = time.perf_counter()
        chain.blocks_until(lambda s: s.round().phase == types_pb2.PHASE_VOTE)
        close = time.perf_counter() - start
    return {"bytes": size, "check": check, "process": process, "finalize": finalize, "close": close}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rate = bench_fedavg(args.updates, args.params, args.repeats)
    print(
        f"fedavg: {args.updates} updates x {args.params} params: {rate / 1e6:.1f} M params/s "
        f"({args.updates * args.params / rate * 1e3:.1f} ms per aggregation)"
    )
    r = bench_block(args.updates, args.params)
    mb = r["bytes"] / 1e6
    print(f"block: {args.updates} update txs, {mb:.1f} MB")
    print(f"  check_tx:         {r['check'] * 1e3:7.1f} ms  {mb / r['check']:6.1f} MB/s")
    print(
        f"  process_proposal: {r['process'] * 1e3:7.1f} ms  {mb / r['process']:6.1f} MB/s (stateless checks, "
        "remembered for finalize)"
    )
    print(f"  finalize+commit:  {r['finalize'] * 1e3:7.1f} ms  {mb / r['finalize']:6.1f} MB/s")
    both = r["check"] + r["process"] + r["finalize"]
    print(f"  all three:        {both * 1e3:7.1f} ms  {mb / both:6.1f} MB/s of update bytes")
    print(f"  close REVEAL_UPDATES (FedAvg of the stored updates + candidate): {r['close'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
