"""Why a run misses a target, read from what the chain did: how the honest participants who were
removed lost their stake, what became of the attackers' updates, how many honest updates were left
out, and in how many rounds attackers proposed side by side (masking each other's leave-one-out
evidence) or cast most of the ballots.

A run's `Diagnosis` is a row of counts (runs.csv keeps them); `explain` turns a cell's counts,
summed over its seeds, into one sentence per missed target for the matrix report.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from flchain.v1 import types_pb2

# What a participant did to lose stake, by the reason of the chain's `slashed` event.
LOSS_CAUSES = {
    "voter_contradicted": "votes",
    "update_condemned": "updates",
    "update_copied": "updates",  # a copy is a condemned update, whatever the ballots found
    "liveness_proposer": "silence",
    "liveness_voter": "silence",
    "unrevealed_update": "silence",
    "unrevealed_ballot": "silence",
    "liveness_aggregator": "silence",
    "aggregate_mismatch": "aggregates",
}
CAUSE_WORDS = {
    "votes": "votes contradicting clear verdicts",
    "updates": "condemned updates",
    "silence": "silence (missed or unrevealed work)",
    "aggregates": "mismatched aggregates",
}


@dataclass
class Diagnosis:
    rounds: int = 0
    # honest participants removed, each counted once under the cause that cost it the most stake
    honest_removed_by_votes: int = 0
    honest_removed_by_updates: int = 0
    honest_removed_by_silence: int = 0
    honest_removed_by_aggregates: int = 0
    honest_updates: int = 0
    honest_updates_left_out: int = 0
    # attackers' updates tallied, and what the verdicts made of them
    attacker_updates: int = 0
    attacker_updates_condemned: int = 0
    attacker_updates_left_out: int = 0  # left out without condemnation (no slash)
    rounds_attacker_included: int = 0  # rounds whose FedAvg took an attacker's update
    rounds_masked: int = 0  # two or more attackers' updates in one round
    rounds_attacker_ballots: int = 0  # attackers cast more than half of the round's ballots
    _lost: dict[int, dict[str, int]] = field(default_factory=dict, repr=False)

    def lose(self, participant: int, reason: str, amount: int) -> None:
        """A `slashed` event of the run."""
        cause = LOSS_CAUSES.get(reason)
        if cause:
            by_cause = self._lost.setdefault(participant, {})
            by_cause[cause] = by_cause.get(cause, 0) + amount

    def add_round(
        self, finished: types_pb2.Round, malicious: Mapping[bytes, bool], poisons: Mapping[bytes, bool]
    ) -> None:
        """A tallied round. By address: malicious, whether the participant is an attacker; poisons,
        whether its updates are not honest work (a lying voter's are)."""
        self.rounds += 1
        attackers = [v for v in finished.verdicts if poisons.get(v.proposer, False)]
        honest = [v for v in finished.verdicts if not malicious.get(v.proposer, False)]
        self.honest_updates += len(honest)
        self.honest_updates_left_out += sum(not v.included for v in honest)
        self.rounds_attacker_included += any(v.included for v in attackers)
        self.rounds_masked += len(attackers) >= 2
        self.rounds_attacker_ballots += 2 * sum(malicious.get(b.voter, False) for b in finished.ballots) > len(
            finished.ballots
        )
        self.attacker_updates += len(attackers)
        self.attacker_updates_condemned += sum(v.condemned for v in attackers)
        self.attacker_updates_left_out += sum(not v.included and not v.condemned for v in attackers)

    def removed(self, honest_removed: Sequence[int]) -> None:
        """At the end of the run: the honest participants no longer bonded."""
        for i in honest_removed:
            lost = self._lost.get(i, {})
            cause = max(lost, key=lambda c: lost[c]) if lost else "silence"
            name = f"honest_removed_by_{cause}"
            setattr(self, name, getattr(self, name) + 1)

    def row(self) -> dict[str, int]:
        """The counts, as columns of runs.csv."""
        return {f"diag_{k}": v for k, v in asdict(self).items() if not k.startswith("_")}


def total(runs: Sequence[Mapping], name: str) -> int:
    """A count summed over a cell's runs (0 where a report predates the column)."""
    return sum(int(r.get(f"diag_{name}") or 0) for r in runs)


def recorded(runs: Sequence[Mapping]) -> bool:
    """Whether runs hold the counts (rows of a report written before they were recorded do not)."""
    return bool(runs) and all(r.get("diag_rounds") is not None for r in runs)


def removals(runs: Sequence[Mapping]) -> dict[str, int]:
    """Honest participants removed, by the words for what cost them most."""
    return {words: total(runs, f"honest_removed_by_{cause}") for cause, words in CAUSE_WORDS.items()}


def update_fates(runs: Sequence[Mapping]) -> dict[str, int]:
    """What became of the attackers' updates: condemned, left out without a slash, or aggregated."""
    condemned, left_out = total(runs, "attacker_updates_condemned"), total(runs, "attacker_updates_left_out")
    return {
        "condemned": condemned,
        "left out, no slash": left_out,
        "in the FedAvg": total(runs, "attacker_updates") - condemned - left_out,
    }


def _mean(runs: Sequence[Mapping], column: str) -> float | None:
    """A column's mean over a cell's runs; None if any run lacks it."""
    values: list[float] = []
    for run in runs:
        value = run.get(column)
        if value is None:
            return None
        values.append(float(value))
    return float(np.mean(values)) if values else None


def _share(part: int, whole: int) -> str:
    return f"{part * 100 // whole}%" if whole else "-"


def explain(missed: Sequence[str], runs: Sequence[Mapping], honest_alone: float | None = None) -> str:
    """One clause per missed target, from the counts of a cell's runs; empty when the runs hold no
    counts (a report written before they were recorded). honest_alone: the accuracy FedAvg reaches
    among the cell's honest participants alone, if it was measured."""
    if not recorded(runs):
        return ""

    def t(name: str) -> int:
        return total(runs, name)

    clauses = []
    for target in missed:
        if target == "honest_removed":
            removed = ", ".join(f"{words} ({n})" for words, n in removals(runs).items() if n)
            clauses.append("honest removed by " + removed)
        elif target == "removal":
            fates = update_fates(runs)
            n = sum(fates.values())
            clauses.append(
                f"attackers' updates: {n}, condemned {_share(fates['condemned'], n)}, "
                f"left out {_share(fates['left out, no slash'], n)}"
            )
        elif target == "accuracy":
            rounds = t("rounds")
            parts = [
                (t("rounds_attacker_included"), "an attacker's update in the FedAvg"),
                (t("rounds_masked"), "attackers' updates side by side"),
                (t("rounds_attacker_ballots"), "most ballots attackers'"),
            ]
            said = [f"{words} in {_share(n, rounds)} of rounds" for n, words in parts if n]
            left_out = _share(t("honest_updates_left_out"), t("honest_updates"))
            said.append(f"honest updates left out {left_out}")
            if honest_alone is not None:
                said.append(f"FedAvg among the honest alone reaches {honest_alone:.3f}")
            clauses.append(", ".join(said))
        elif target in ("liar_return", "free_rider_return", "copier_return", "honest_return"):
            who = "honest" if target == "honest_return" else "attacker"
            voter, proposer = _mean(runs, f"{who}_ballot_return"), _mean(runs, f"{who}_update_return")
            if voter is not None and proposer is not None:
                clauses.append(
                    f"{'honest participants' if who == 'honest' else 'attackers'} earned "
                    f"{voter:+.2f} as voters, {proposer:+.2f} as proposers"
                )
    return "; ".join(clauses)
