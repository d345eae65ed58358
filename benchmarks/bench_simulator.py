"""Simulator speed (figures, not pass/fail): simulated rounds per second with 100 participants,
in fast mode (statistical votes) and in torch mode (real local training and evaluation).

Run: python benchmarks/bench_simulator.py [--participants 100] [--rounds 30]
"""

import argparse
import time

from experiments.config import SimConfig
from experiments.simulator import Simulation


def rounds_per_second(config: SimConfig) -> tuple[float, int]:
    start = time.perf_counter()
    result = Simulation(config).run()
    elapsed = time.perf_counter() - start
    return len(result.records) / elapsed, len(result.records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for mode in ("fast", "torch"):
        config = SimConfig(
            participants=args.participants,
            rounds=args.rounds,
            mode=mode,
            attacker_fraction=0.3,
            num_proposers=10,
            num_voters=20,
        )
        rate, played = rounds_per_second(config)
        print(
            f"{mode:>5} mode: {rate:7.1f} rounds/s ({played} rounds, {args.participants} participants, "
            f"10 proposers + 20 voters per round, model {config.model})"
        )


if __name__ == "__main__":
    main()
