"""Parameter sweeps: which stake threshold, reward and slash ratios and proposer count filter
attackers out quickly while honest participants still earn?"""

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from experiments.config import SimConfig
from experiments.records import SimResult
from experiments.report import plt
from experiments.simulator import Simulation

PARAM_KEYS = ("threshold", "proposer_reward_bps", "proposer_slash_bps", "num_proposers", "num_voters")


@dataclass(frozen=True)
class Grid:
    threshold: tuple[float, ...] = (0.3, 0.5, 0.7)
    proposer_reward_bps: tuple[int, ...] = (300, 1_000)
    proposer_slash_bps: tuple[int, ...] = (1_000, 2_000, 3_000, 5_000)
    num_proposers: tuple[int, ...] = (1, 2, 3)
    num_voters: tuple[int, ...] = (5, 9)
    attacker_fraction: tuple[float, ...] = (0.1, 0.3, 0.45)
    seeds: int = 3

    def configs(self, base: SimConfig) -> list[SimConfig]:
        values = [getattr(self, k) for k in (*PARAM_KEYS, "attacker_fraction")]
        return [
            replace(
                base,
                threshold=t,
                proposer_reward_bps=r,
                proposer_slash_bps=s,
                num_proposers=p,
                num_voters=v,
                attacker_fraction=f,
                seed=base.seed + seed,
            )
            for t, r, s, p, v, f in itertools.product(*values)
            for seed in range(self.seeds)
        ]


def run_row(config: SimConfig, result: SimResult, baselines: dict[str, float]) -> dict:
    removal = result.rounds_until_attackers_removed
    return {
        **{k: getattr(config, k) for k in PARAM_KEYS},
        "attacker_fraction": config.attacker_fraction,
        "seed": config.seed,
        "rounds": len(result.records),
        "all_attackers_removed": removal is not None,
        "rounds_until_removed": removal,
        "honest_return": result.honest_return,
        "attacker_return": result.attacker_return,
        "honest_removed_share": result.honest_removed_share,
        "final_accuracy": result.final_accuracy,
        **baselines,
    }


def summarize(rows: list[dict], cap: int) -> list[dict]:
    """Mean over seeds per (params, attacker fraction); a run that never removed every attacker
    counts as cap + 1 rounds, so slow filtering is never hidden by an average."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in (*PARAM_KEYS, "attacker_fraction")), []).append(row)
    out = []
    for key, runs in groups.items():
        mean = functools.partial(_mean_of, runs)
        out.append(
            {
                **dict(zip((*PARAM_KEYS, "attacker_fraction"), key)),
                "runs": len(runs),
                "removed_share": float(np.mean([r["all_attackers_removed"] for r in runs])),
                "rounds_until_removed": float(np.mean([r["rounds_until_removed"] or cap + 1 for r in runs])),
                "honest_return": mean("honest_return"),
                "attacker_return": mean("attacker_return"),
                "honest_removed_share": mean("honest_removed_share"),
                "final_accuracy": mean("final_accuracy"),
                **{k: mean(k) for k in runs[0] if k.endswith("_accuracy") and k != "final_accuracy"},
            }
        )
    return out


def _mean_of(runs: list[dict], field: str) -> float | None:
    """Mean of a field over the runs that have it; None when none has."""
    values = [r[field] for r in runs if r.get(field) is not None]
    return float(np.mean(values)) if values else None


MIN_HONEST_RETURN = 0.1  # a margin above zero, so that noise between runs cannot flip the sign
# Params that remove more than this share of the honest participants on the way are not
# recommended (the scenario matrix holds the defence to 5%: experiments.matrix).
MAX_HONEST_REMOVED = 0.3


def recommend(
    summary: list[dict], min_honest_return: float = MIN_HONEST_RETURN, max_honest_removed: float = MAX_HONEST_REMOVED
) -> dict | None:
    """The params that remove every attacker in every run at every attacker fraction while the
    honest mean return clears the margin and at most `max_honest_removed` of the honest
    participants are removed too, fastest in the worst case (ties: higher honest return)."""
    by_params: dict[tuple, list[dict]] = {}
    for row in summary:
        by_params.setdefault(tuple(row[k] for k in PARAM_KEYS), []).append(row)
    eligible = []
    for params, rows in by_params.items():
        if all(
            r["removed_share"] == 1.0
            and (r["honest_return"] or 0) > min_honest_return
            and (r.get("honest_removed_share") or 0) <= max_honest_removed
            for r in rows
        ):
            worst = max(r["rounds_until_removed"] for r in rows)
            eligible.append((worst, -min(r["honest_return"] for r in rows), params))
    if not eligible:
        return None
    _, _, best = min(eligible)
    return dict(zip(PARAM_KEYS, best))


def run_sweep(
    grid: Grid,
    base: SimConfig,
    on_run: Callable[[], None] | None = None,
    baseline_fn: Callable[[SimConfig], dict[str, float]] | None = None,
) -> list[dict]:
    rows, baseline_cache = [], {}
    for config in grid.configs(base):
        result = Simulation(config).run()
        baselines = {}
        if baseline_fn is not None:
            # Of the swept values, an undefended run depends on these alone (not on stake params).
            key = (config.attacker_fraction, config.seed, config.num_proposers)
            if key not in baseline_cache:
                baseline_cache[key] = baseline_fn(config)
            baselines = baseline_cache[key]
        rows.append(run_row(config, result, baselines))
        if on_run:
            on_run()
    return rows


def plot(path: Path, summary: list[dict], chosen: dict, rounds: int) -> Path:
    """Rounds to remove every attacker, honest return and honest participants removed against the
    slash ratio, one line per attacker fraction, the other params held at the chosen values;
    accuracy against baselines."""
    fractions = sorted({r["attacker_fraction"] for r in summary})
    held = [r for r in summary if all(r[k] == chosen[k] for k in PARAM_KEYS if k != "proposer_slash_bps")]
    has_accuracy = any(r["final_accuracy"] is not None for r in summary)
    fig, axes = plt.subplots(1, 4 if has_accuracy else 3, figsize=(20 if has_accuracy else 15, 4.2))
    for f in fractions:
        line = sorted((r for r in held if r["attacker_fraction"] == f), key=lambda r: r["proposer_slash_bps"])
        slash = [r["proposer_slash_bps"] / 100 for r in line]
        axes[0].plot(slash, [r["rounds_until_removed"] for r in line], marker="o", label=f"{f:.0%} attackers")
        axes[1].plot(slash, [r["honest_return"] for r in line], marker="o", label=f"{f:.0%} attackers")
        axes[2].plot(
            slash, [100 * (r["honest_removed_share"] or 0) for r in line], marker="o", label=f"{f:.0%} attackers"
        )
    axes[0].axhline(rounds + 1, color="grey", ls=":", lw=1, label="not removed")
    axes[0].set(xlabel="proposer slash (%)", ylabel="rounds until every attacker is removed")
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].set(xlabel="proposer slash (%)", ylabel="honest mean return (x initial stake)")
    axes[2].axhline(100 * MAX_HONEST_REMOVED, color="grey", ls=":", lw=1, label="recommendation's bound")
    axes[2].set(xlabel="proposer slash (%)", ylabel="honest participants removed (%)")
    fixed = ", ".join(f"{k}={chosen[k]}" for k in PARAM_KEYS if k != "proposer_slash_bps")
    axes[0].set_title(fixed, fontsize=9)
    for ax in axes[:3]:
        ax.legend(fontsize=8)
    if has_accuracy:
        at_choice = sorted(
            (r for r in held if r["proposer_slash_bps"] == chosen["proposer_slash_bps"]),
            key=lambda r: r["attacker_fraction"],
        )
        xs = [r["attacker_fraction"] * 100 for r in at_choice]
        axes[3].plot(xs, [r["final_accuracy"] for r in at_choice], marker="o", lw=2, label="flchain")
        for name in ("fedavg_accuracy", "median_accuracy", "trimmed_mean_accuracy"):
            if name in at_choice[0]:
                axes[3].plot(
                    xs,
                    [r[name] for r in at_choice],
                    marker="s",
                    ls="--",
                    label=name.removesuffix("_accuracy") + " without defence",
                )
        axes[3].set(xlabel="attackers (%)", ylabel="final test accuracy", ylim=(0, 1))
        axes[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
