"""Models by reference at 1M, 10M and 100M parameters (figures, not pass/fail): round time, bytes moved
through the object store, and the memory and disk of validators and store.

Each size runs on a fresh 4-validator localnet with its SeaweedFS store, with 5 participants (every
round draws 2 proposers and 3 voters, who then aggregate). Participants here train nothing: a
proposer's update is a seeded small step toward a target and a voter's loss is the distance to it,
so the figures are what the chain, the store and the verification cost at that size (fetch, verify,
fixed-point FedAvg, store), not what a network's training costs. Validators never see the bytes:
their memory and state should not move with the size.

Run: python benchmarks/bench_large_models.py [--sizes 1,10,100] [--rounds 3]
"""

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abci_app import genesis
from client.gateway_client import GatewayClient
from client.object_store import ObjectStore
from flchain.v1 import types_pb2
from localnet import launch
from localnet.genesis import participant_keys
from participant.learner import Part
from participant.params import Params
from participant.runtime import Crew, Participant

PARTICIPANTS = 5
COLUMNS = 1_000  # the model is one (size / COLUMNS, COLUMNS) matrix and a bias of COLUMNS


@dataclass
class SyntheticLearner:
    """A target to move toward: a proposer steps 1% of the way plus a step of its own as large (what
    its own data would add), a voter's loss is the mean squared gap. Two proposers' steps are at a
    cosine of about 0.5, like honest updates; steps toward the target alone would all be alike, and
    the copy rule condemns them as copies of each other."""

    target: Params
    seed: int

    def train(self, global_params: Params, round_id: int) -> tuple[Params, int]:
        rng = np.random.default_rng((self.seed, round_id))
        step = []
        for (n, g), (_, t) in zip(global_params, self.target):
            toward = 0.01 * (t - g)
            own = rng.standard_normal(g.shape, dtype=np.float32) * np.float32(np.std(toward))  # float32: 100M
            step.append((n, toward + own))
        return step, 100

    def loss(self, params: Params, part: Part | None = None) -> float:  # synthetic: no samples to split
        return float(np.mean([np.mean((p - t) ** 2, dtype=np.float64) for (_, p), (_, t) in zip(params, self.target)]))

    def describe(self) -> str:
        return f"synthetic learner of {sum(t.size for _, t in self.target):,} parameters"


def model_of(millions: int, seed: int) -> Params:
    rng = np.random.default_rng(seed)
    rows = millions * 1_000_000 // COLUMNS - 1
    return [("w", rng.normal(0, 0.1, (rows, COLUMNS)).astype(np.float32)), ("b", np.zeros(COLUMNS, np.float32))]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run(millions: int, rounds: int, base_port: int) -> dict:
    params = genesis.default_params()
    params.num_proposers, params.num_voters, params.min_participants = 2, 3, PARTICIPANTS
    params.propose_timeout_ms = params.vote_timeout_ms = params.reveal_timeout_ms = 600_000
    params.aggregate_timeout_ms = 600_000
    initial, target = model_of(millions, 0), model_of(millions, 1)
    with tempfile.TemporaryDirectory(prefix="flchain-bench-large-") as tmp:
        home = Path(tmp)
        net = launch.start(
            home,
            participants=PARTICIPANTS,
            bonded_at_genesis=PARTICIPANTS,
            base_port=base_port,
            fresh=True,
            params=params,
            model=initial,
            store=True,
            timeout_commit="200ms",
        )
        del initial
        stores = [ObjectStore(net.store().url) for _ in range(PARTICIPANTS)]
        keys = participant_keys(launch.keys_dir(home), PARTICIPANTS)
        crew = Crew(
            [
                Participant(k, GatewayClient(net.ports(i % 4).gateway_address), SyntheticLearner(target, i), store=s)
                for i, (k, s) in enumerate(zip(keys, stores))
            ]
        )
        try:
            observer = GatewayClient(net.ports(0).gateway_address)
            watch = observer.watch_rounds()
            stall = threading.Timer(1800, watch.cancel)
            stall.start()
            crew.start()
            started: dict[int, float] = {}
            durations, outcomes = [], []
            for event in watch:
                rnd = event.round
                if rnd.phase == types_pb2.PHASE_PROPOSE:
                    started.setdefault(rnd.id, time.perf_counter())
                if event.HasField("finished") and event.finished.id in started:
                    durations.append(time.perf_counter() - started[event.finished.id])
                    outcomes.append(types_pb2.Outcome.Name(event.finished.outcome)[8:].lower())
                    print(
                        f"  {millions}M: round {event.finished.id} {outcomes[-1]} in {durations[-1]:.1f} s", flush=True
                    )
                    if len(durations) >= rounds:
                        watch.cancel()
                        break
            stall.cancel()
            status = net.status()
            return {
                "millions": millions,
                "file_mib": net_model_mib(observer),
                "round_s": statistics.median(durations),
                "outcomes": outcomes,
                "put_mib_per_round": sum(s.bytes_put for s in stores) / 2**20 / len(durations),
                "got_mib_per_round": sum(s.bytes_got for s in stores) / 2**20 / len(durations),
                "validator_rss_mib": max(peak_rss_mib(row["pids"]["app"]) for row in status),
                "validator_state_mib": max(tree_mib(net.node_home(i) / "app") for i in range(4)),
                "store_rss_mib": peak_rss_mib(net.store_pid() or 0),
            }
        finally:
            crew.stop()
            net.down()


def net_model_mib(observer: GatewayClient) -> float:
    return observer.model().ref.size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="millions of parameters, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=27656)
    args = parser.parse_args()
    rows = []
    for millions in [int(s) for s in args.sizes.split(",")]:
        print(f"{millions}M parameters: starting a 4-validator localnet with its object store ...", flush=True)
        rows.append(run(millions, args.rounds, args.base_port))
    print()
    print(
        "| parameters | file | round (median) | stored per round | fetched per round | validator peak RSS | "
        "validator state | store peak RSS | outcomes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r['millions']}M",
            f"{r['file_mib']:.0f} MiB",
            f"{r['round_s']:.1f} s",
            f"{r['put_mib_per_round']:.0f} MiB",
            f"{r['got_mib_per_round']:.0f} MiB",
            f"{r['validator_rss_mib']:.0f} MiB",
            f"{r['validator_state_mib']:.1f} MiB",
            f"{r['store_rss_mib']:.0f} MiB",
            ", ".join(r["outcomes"]),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
