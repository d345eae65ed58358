"""The defence's scenario matrix: every data split x attacker fraction x attack, several seeds, in
torch mode, each cell held against the targets the defence must meet.

A cell's reference is plain FedAvg without any attacker on the same split and seeds: what an
honest federation reaches with no defence at all. Beside it, plain FedAvg among the cell's honest
participants alone shows what a perfect defence would reach: on one-sided data the attackers'
shards hold classes that nobody else has, and a federation without them learns less.
Runs are independent, so they are spread over worker processes; every result is a pure function of
its (split, fraction, attack, seed).
"""

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from experiments import diagnosis
from experiments.config import HONEST_ALONE, REFERENCE, SimConfig
from participant import behaviours

FREE_RIDERS = ("free_rider", "tiny_step")
# Attackers who corrupt only their votes: the paper's guarantee is that a malicious vote does not
# pay, so they are held to a negative return; removal is the target of attackers who corrupt updates.
VOTE_ONLY = ("lying_voter",)
# Lazy attackers who copy what they can see in one role and work honestly in the other: what the
# copying role earns them (net stake as proposer, or as voter) is held to <= 0.
COPIERS = {"copy_update": "update", "copy_ballot": "ballot"}
ATTACKS = tuple(behaviours.ATTACKS)  # every attack of the library
NO_ATTACK = "none"  # the fraction-0 cell of a split

# The targets of every cell.
MAX_HONEST_REMOVED = 0.05
REMOVAL_DEADLINE = 20  # rounds within which every (non free-riding) attacker must be removed
MAX_ACCURACY_GAP = 0.02  # final accuracy at most this far below the no-attack FedAvg reference


def split_name(alpha: float | None) -> str:
    return "iid" if alpha is None else f"dirichlet-{alpha:g}"


@dataclass(frozen=True)
class Matrix:
    splits: tuple[float | None, ...] = (None, 0.5, 0.1)  # None: IID; else Dirichlet alpha
    fractions: tuple[float, ...] = (0.0, 0.1, 0.3, 0.45)
    attacks: tuple[str, ...] = ATTACKS
    seeds: int = 3
    base: SimConfig = field(default_factory=lambda: SimConfig(mode="torch", attackers_lie=True))

    def configs(self) -> list[tuple[str, SimConfig]]:
        """(attack label, config) of every run; a fraction of 0 is one cell per split, not one per attack."""
        runs = []
        for alpha in self.splits:
            for fraction in self.fractions:
                attacks = [NO_ATTACK] if fraction == 0 else list(self.attacks)
                for attack in attacks:
                    for seed in range(self.seeds):
                        config = replace(
                            self.base,
                            alpha=alpha,
                            attacker_fraction=fraction,
                            attack=self.base.attack if attack == NO_ATTACK else attack,
                            seed=self.base.seed + seed,
                        )
                        runs.append((attack, config))
        return runs

    def references(self) -> list[SimConfig]:
        """The FedAvg runs without the defence, one per split, fraction and seed: the no-attack
        reference at fraction 0, the honest participants alone at the others (the attackers' seats
        depend on the fraction and the seed, not on the attack)."""
        return [
            replace(self.base, alpha=alpha, attacker_fraction=fraction, seed=self.base.seed + seed)
            for alpha in self.splits
            for fraction in dict.fromkeys((0.0, *self.fractions))
            for seed in range(self.seeds)
        ]


def run_one(job: tuple[str, SimConfig]) -> dict:
    """One defended federation; a row of the runs table."""
    import torch

    from experiments.simulator import Simulation

    torch.set_num_threads(1)
    attack, config = job
    result = Simulation(config).run()
    return {
        "split": split_name(config.alpha),
        "attacker_fraction": config.attacker_fraction,
        "attack": attack,
        "seed": config.seed,
        "rounds": len(result.records),
        "final_accuracy": result.final_accuracy,
        "rounds_until_removed": result.rounds_until_attackers_removed,
        "honest_removed_share": result.honest_removed_share,
        "honest_return": result.honest_return,
        "attacker_return": result.attacker_return,
        "attacker_update_return": result.role_return("update"),
        "attacker_ballot_return": result.role_return("ballot"),
        "honest_update_return": result.role_return("update", malicious=False),
        "honest_ballot_return": result.role_return("ballot", malicious=False),
        **(result.diagnosis.row() if result.diagnosis else {}),
    }


def run_reference(config: SimConfig) -> dict:
    import torch

    from experiments.baselines import run_baseline

    torch.set_num_threads(1)
    baseline = HONEST_ALONE if config.attacker_fraction else REFERENCE
    return {
        "split": split_name(config.alpha),
        "attacker_fraction": config.attacker_fraction,
        "seed": config.seed,
        "accuracy": run_baseline(config, baseline)[-1],
    }


def run_matrix(
    matrix: Matrix, workers: int | None = None, on_done: Callable[[], None] | None = None
) -> tuple[list[dict], list[dict]]:
    """(rows of every defended run, rows of every reference run)."""
    jobs = matrix.configs()
    references = matrix.references()
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        ref_futures = [pool.submit(run_reference, c) for c in references]
        run_futures = [pool.submit(run_one, job) for job in jobs]
        rows = []
        for future in run_futures:
            rows.append(future.result())
            if on_done:
                on_done()
        refs = []
        for future in ref_futures:
            refs.append(future.result())
            if on_done:
                on_done()
    return rows, refs


def read_rows(path: Path) -> list[dict]:
    """Rows of a runs.csv or references.csv written by a previous matrix (numbers back to numbers)."""

    def value(text: str):
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text

    with path.open(newline="") as f:
        return [
            {k: value(v) if k not in ("split", "attack") else v for k, v in row.items()} for row in csv.DictReader(f)
        ]


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarize(rows: Sequence[dict], refs: Sequence[dict]) -> list[dict]:
    """One row per cell: means over seeds (and the worst seed where a target is about the worst case),
    with each target checked."""
    reference = {(r["split"], r["seed"]): r["accuracy"] for r in refs if not r.get("attacker_fraction")}
    # older reports ran no honest-alone baselines
    alone = {(r["split"], r["attacker_fraction"], r["seed"]): r["accuracy"] for r in refs if r.get("attacker_fraction")}
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["split"], row["attacker_fraction"], row["attack"]), []).append(row)
    cells = []
    for (split, fraction, attack), runs in groups.items():
        gaps = [r["final_accuracy"] - reference[(split, r["seed"])] for r in runs]
        removal = [r["rounds_until_removed"] for r in runs]
        cell = {
            "split": split,
            "attacker_fraction": fraction,
            "attack": attack,
            "seeds": len(runs),
            "final_accuracy": _mean(r["final_accuracy"] for r in runs),
            "reference_accuracy": _mean(reference[(split, r["seed"])] for r in runs),
            "accuracy_gap": _mean(gaps),
            "honest_alone_accuracy": _mean(
                alone.get((split, fraction, r["seed"])) if fraction else reference[(split, r["seed"])] for r in runs
            ),
            "worst_rounds_until_removed": None if None in removal else max(removal),
            "removed_in_all_seeds": None not in removal,
            "max_honest_removed_share": max(r["honest_removed_share"] or 0.0 for r in runs),
            "honest_return": _mean(r["honest_return"] for r in runs),
            "attacker_return": _mean(r["attacker_return"] for r in runs),
            # what the copying role earned (copiers only; older reports have no such column)
            "copier_return": _mean(r.get(f"attacker_{COPIERS[attack]}_return") for r in runs)
            if attack in COPIERS
            else None,
        }
        missed = missed_targets(cell)
        cell["missed"] = ",".join(missed)
        cell["why"] = diagnosis.explain(missed, runs, cell["honest_alone_accuracy"])
        cells.append(cell)
    return cells


def missed_targets(cell: dict) -> list[str]:
    """The targets this cell misses (empty: it meets them all)."""
    missed = []
    if cell["max_honest_removed_share"] > MAX_HONEST_REMOVED + 1e-9:  # 1 of 20 is 5%, not 5.0000001%
        missed.append("honest_removed")
    if (cell["honest_return"] or 0.0) <= 0:
        missed.append("honest_return")
    if (cell["accuracy_gap"] or 0.0) < -MAX_ACCURACY_GAP:
        missed.append("accuracy")
    if cell["attacker_fraction"] > 0:
        if cell["attack"] in COPIERS:
            if (cell["copier_return"] or 0.0) > 0:
                missed.append("copier_return")
        elif cell["attack"] in FREE_RIDERS:
            if (cell["attacker_return"] or 0.0) > 0:
                missed.append("free_rider_return")
        elif cell["attack"] in VOTE_ONLY:
            if (cell["attacker_return"] or 0.0) >= 0:
                missed.append("liar_return")
        elif not cell["removed_in_all_seeds"] or cell["worst_rounds_until_removed"] > REMOVAL_DEADLINE:
            missed.append("removal")
    return missed
