"""Round latency (figures, not pass/fail): one federated round on the 4-validator localnet versus
the same round computed in process, with the same clients, model and data.

In process, a round is what a FedAvg server does: the drawn proposers train, their updates are
averaged (float FedAvg), the drawn voters measure each update (leave-one-out) on their held-out splits. On the
localnet the same participants do the same work through their gateways, and the round also waits
for consensus: updates and ballots are sealed, so each is committed and then revealed, and each of
the four phases (PROPOSE, REVEAL_UPDATES, VOTE, REVEAL_BALLOTS) ends in the block where its last
tx lands; the next round is drawn in the tally's block. The chain adds at least four block
intervals to the participants' compute. The ratio says what decentralisation costs.

Run: python benchmarks/bench_round_latency.py [--participants 20] [--rounds 5]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from abci_app import genesis, judgement
from client.gateway_client import GatewayClient
from client.tx import evidence_units, loss_units
from experiments.baselines import aggregate
from experiments.config import SimConfig
from experiments.demo import Demo, DemoConfig
from flchain.v1 import types_pb2
from participant.digits import DigitsLearner
from participant.duties import judge
from participant.ml import data, models
from participant.params import add


def in_process_round_s(participants: int, rounds: int, seed: int = 0) -> float:
    """Mean seconds of one FedAvg round with the chain's proposer/voter counts, no chain."""
    params = genesis.default_params()
    shards, _ = data.partition(participants, seed=seed)
    learners = [DigitsLearner(shard, seed=i) for i, shard in enumerate(shards)]
    model = models.initial_params("mlp", seed)
    times = []
    for r in range(rounds + 1):  # round 0 warms torch up and is not counted
        start = time.perf_counter()
        order = [(r * 7 + i) % participants for i in range(params.num_proposers + params.num_voters)]
        proposers, voters = order[: params.num_proposers], order[params.num_proposers :]
        trained = [learners[i].train(model, r) for i in proposers]
        updates = [update for update, _ in trained]
        evidence = [judge(learners[i].loss, model, trained) for i in voters]
        ballots = [
            types_pb2.Ballot(voter=bytes([v]), loss=loss_units(e.loss), scores=[evidence_units(s) for s in e.scores])
            for v, e in enumerate(evidence)
        ]
        verdicts, _ = judgement.judge(
            [bytes([100 + k]) for k in range(len(updates))],
            ballots,
            {},
            judgement.Bars.of(params),
        )  # the chain's own rule, every voter with the same weight
        included = [k for k, v in enumerate(verdicts) if v.included]
        if included:
            model = add(model, aggregate("fedavg", [updates[k] for k in included], [trained[k][1] for k in included]))
        times.append(time.perf_counter() - start)
    return statistics.mean(times[1:])


def localnet_round_s(participants: int, rounds: int, base_port: int) -> tuple[float, float, float]:
    """(mean seconds per round, mean blocks per round, mean seconds per block) on a 4-validator localnet."""
    with tempfile.TemporaryDirectory() as home:
        federation = SimConfig(participants=participants, attacker_fraction=0.0, rounds=rounds, mode="localnet")
        demo = Demo(DemoConfig(federation, home=Path(home), base_port=base_port))
        try:
            demo.start()
            observer = GatewayClient(demo.running_net().ports(0).gateway_address)
            stamps = []  # (time, height) at each tallied round
            watch = observer.watch_rounds()
            for event in watch:
                if event.HasField("finished"):
                    stamps.append((time.perf_counter(), event.height))
                    print(f"  localnet round {event.finished.id} tallied at height {event.height}", flush=True)
                if len(stamps) > rounds:  # the first tally only starts the clock
                    watch.cancel()
                    break
        finally:
            demo.stop()
    seconds = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    blocks = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
    return statistics.mean(seconds), statistics.mean(blocks), sum(seconds) / sum(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base-port", type=int, default=36656, help="localnet ports (away from a running one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = genesis.default_params()
    print(
        f"{args.participants} participants, MLP on digits, {params.num_proposers} proposers + "
        f"{params.num_voters} voters per round"
    )
    local = in_process_round_s(args.participants, args.rounds)
    print(
        f"in-process FedAvg round: {local * 1000:8.1f} ms  (train {params.num_proposers}, average, "
        f"evaluate {params.num_voters})"
    )
    print(f"localnet: running {args.rounds} rounds after a warm-up round ...", flush=True)
    chain, blocks, block_s = localnet_round_s(args.participants, args.rounds, args.base_port)
    print(
        f"4-validator localnet round: {chain * 1000:8.1f} ms  ({blocks:.1f} blocks at {block_s * 1000:.0f} ms; "
        f"phases end on their last tx, deadlines {params.propose_timeout_ms} / {params.vote_timeout_ms} ms)"
    )
    print(f"ratio localnet / in-process: {chain / local:.0f}x")


if __name__ == "__main__":
    main()
