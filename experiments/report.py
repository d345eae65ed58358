"""What a simulation leaves behind: CSV tables a person can open, and plots of what matters."""

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from experiments.config import REFERENCE  # noqa: E402
from experiments.records import SimResult  # noqa: E402

HONEST_COLOUR, MALICIOUS_COLOUR = "tab:blue", "tab:red"


def summary(result: SimResult) -> dict:
    return {
        "rounds_played": len(result.records),
        "rounds_until_attackers_removed": result.rounds_until_attackers_removed,
        "honest_return": result.honest_return,
        "attacker_return": result.attacker_return,
        "honest_removed_share": result.honest_removed_share,
        "final_accuracy": result.final_accuracy,
        "detect_rate": result.detect_rate,
        "clean_accept_rate": result.clean_accept_rate,
        "accepted": sum(r.outcome == "accepted" for r in result.records),
        "rejected": sum(r.outcome == "rejected" for r in result.records),
        "updates_excluded": sum(r.excluded_updates for r in result.records),
        "updates_condemned": sum(r.condemned_updates for r in result.records),
        # why the run went as it did: the matrix's counts, for this one run
        **(result.diagnosis.row() if result.diagnosis else {}),
    }


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    """A table of dicts (all with the same keys) as CSV."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_run(folder: Path, result: SimResult, baselines: dict[str, list[float]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    tags = ["m" if m else "h" for m in result.malicious]
    rounds_csv = folder / "rounds.csv"
    with rounds_csv.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "round",
                "round_id",
                "outcome",
                "malicious_proposers",
                "excluded_updates",
                "condemned_updates",
                "attackers_bonded",
                "honest_bonded",
                "accuracy",
                "loss",
                *(f"{name}_accuracy" for name in baselines),
                *(f"stake_{i:02d}_{t}" for i, t in enumerate(tags)),
            ]
        )
        for k, r in enumerate(result.records):
            writer.writerow(
                [
                    r.index,
                    r.round_id,
                    r.outcome,
                    r.malicious_proposers,
                    r.excluded_updates,
                    r.condemned_updates,
                    r.attackers_bonded,
                    r.honest_bonded,
                    r.accuracy,
                    r.loss,
                    *(acc[k] if k < len(acc) else "" for acc in baselines.values()),
                    *r.stakes,
                ]
            )
    config = asdict(result.config)
    (folder / "summary.json").write_text(json.dumps({"config": config, **summary(result)}, indent=2) + "\n")
    paths = [rounds_csv, folder / "summary.json", plot_stakes(folder / "stake.png", result)]
    if result.records and result.records[0].accuracy is not None:
        paths.append(plot_accuracy(folder / "accuracy.png", result, baselines))
    return paths


def plot_stakes(path: Path, result: SimResult) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rounds = [0] + [r.index for r in result.records]
    for i, malicious in enumerate(result.malicious):
        series = [result.config.initial_stake] + [r.stakes[i] for r in result.records]
        ax.plot(rounds, series, color=MALICIOUS_COLOUR if malicious else HONEST_COLOUR, alpha=0.6, lw=1.2)
    threshold = result.config.threshold * result.config.initial_stake
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold ({threshold:.0f})")
    ax.plot([], [], color=HONEST_COLOUR, label="honest")
    ax.plot([], [], color=MALICIOUS_COLOUR, label=f"malicious ({result.config.attack})")
    ax.set(xlabel="round", ylabel="stake", title="Stake per participant")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy(path: Path, result: SimResult, baselines: dict[str, list[float]]) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(
        [r.index for r in result.records],
        [r.accuracy if r.accuracy is not None else float("nan") for r in result.records],
        lw=2,
        label="flchain (voting + stake)",
    )
    for name, acc in baselines.items():
        label = "FedAvg without attackers (reference)" if name == REFERENCE else f"{name} without defence"
        ax.plot(range(1, len(acc) + 1), acc, lw=1.2, ls=":" if name == REFERENCE else "--", label=label)
    ax.set(
        xlabel="round",
        ylabel="test accuracy",
        ylim=(0, 1),
        title=f"Global model accuracy, {result.config.attacker_fraction:.0%} {result.config.attack}",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
