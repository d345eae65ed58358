"""What an experiment records: one row per tallied round, and the run's result with its metrics.

The simulator and the demo both build their rows with `record_round`, from the tallied round and
the participants as the chain holds them, so their reports mean the same thing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from abci_app.phases import outcome_name
from experiments.config import SimConfig
from experiments.diagnosis import Diagnosis
from flchain.v1 import types_pb2


@dataclass
class RoundRecord:
    index: int  # 1 for the first tallied round
    round_id: int
    outcome: str
    malicious_proposers: int
    attackers_bonded: int
    honest_bonded: int
    stakes: list[int]  # per participant, in participant order
    accuracy: float | None = None
    loss: float | None = None
    excluded_updates: int = 0  # left out of the round's FedAvg
    condemned_updates: int = 0  # of those, condemned (their proposers slashed)


@dataclass
class SimResult:
    config: SimConfig
    malicious: list[bool]
    records: list[RoundRecord]
    initial_wealth: list[int]
    final_wealth: list[int]
    detect_rate: float | None  # torch mode: share of honest verdicts finding a corrupting update harmful
    clean_accept_rate: float | None  # torch mode: share of honest verdicts finding a clean update harmless
    # net stake gained per participant as a proposer ("update") and as a voter ("ballot")
    role_earnings: dict[str, list[int]] | None = None
    diagnosis: Diagnosis | None = None  # simulator runs: why the run went as it did

    @property
    def rounds_until_attackers_removed(self) -> int | None:
        if not any(self.malicious):
            return 0
        return next((r.index for r in self.records if r.attackers_bonded == 0), None)

    def _mean_return(self, malicious: bool) -> float | None:
        idx = [i for i, m in enumerate(self.malicious) if m == malicious]
        if not idx:
            return None
        return float(
            np.mean([(self.final_wealth[i] - self.initial_wealth[i]) / self.config.initial_stake for i in idx])
        )

    @property
    def honest_removed_share(self) -> float | None:
        """Share of honest participants no longer bonded at the end: the defence's collateral."""
        honest = self.malicious.count(False)
        if not honest or not self.records:
            return None
        return 1 - self.records[-1].honest_bonded / honest

    @property
    def honest_return(self) -> float | None:
        return self._mean_return(False)

    @property
    def attacker_return(self) -> float | None:
        return self._mean_return(True)

    def role_return(self, role: str, malicious: bool = True) -> float | None:
        """Attackers' (or honest participants') mean stake gained in one role ("update" or "ballot"),
        per initial stake: what a copier's copying earned, apart from the honest work it did in the
        other role."""
        idx = [i for i, m in enumerate(self.malicious) if m == malicious]
        if not idx or self.role_earnings is None:
            return None
        return float(np.mean([self.role_earnings[role][i] / self.config.initial_stake for i in idx]))

    @property
    def final_accuracy(self) -> float | None:
        return self.records[-1].accuracy if self.records else None


def is_bonded(participant: types_pb2.Participant | None) -> bool:
    """A participant the chain holds, bonded (one removed or never bonded is not)."""
    return participant is not None and participant.status == types_pb2.PARTICIPANT_STATUS_BONDED


def record_round(
    index: int,
    finished: types_pb2.Round,
    addresses: Sequence[bytes],
    on_chain: Mapping[bytes, types_pb2.Participant],
    malicious: Sequence[bool],
    accuracy: float | None = None,
    loss: float | None = None,
) -> RoundRecord:
    """The row of a tallied round. addresses and malicious are in participant order; a participant
    the chain does not hold counts as unbonded with stake 0."""
    position = {address: i for i, address in enumerate(addresses)}
    stakes = [on_chain[a].stake if a in on_chain else 0 for a in addresses]
    bonded = [is_bonded(on_chain.get(a)) for a in addresses]
    return RoundRecord(
        index=index,
        round_id=finished.id,
        outcome=outcome_name(finished.outcome),
        malicious_proposers=sum(malicious[position[a]] for a in finished.submitted if a in position),
        attackers_bonded=sum(b and m for b, m in zip(bonded, malicious)),
        honest_bonded=sum(b and not m for b, m in zip(bonded, malicious)),
        stakes=stakes,
        accuracy=accuracy,
        loss=loss,
        excluded_updates=sum(not v.included for v in finished.verdicts),
        condemned_updates=sum(v.condemned for v in finished.verdicts),
    )
