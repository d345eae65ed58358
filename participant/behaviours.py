"""How a participant behaves: honest, or one of the attacks an open federation must survive.

A behaviour decides four things: which labels it trains on, how it turns its honest update
into the one it submits, how many samples it claims to have trained on (FedAvg's weight), and
whether it tells the truth when it votes. Each is small and named so that experiments (the
simulator, the demo) can mix them. Four attacks adapt: they behave honestly part of the time,
keep their poison at an honest update's size, claim more samples than they have, or coordinate
their votes with their accomplices. The last two are lazy: they copy the work they can see instead of
doing their own (the chain seals each round's work until every commitment is in, so what they can
see is earlier rounds' work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from participant.ml.data import NUM_CLASSES, Split
from participant.params import Params


@dataclass(frozen=True)
class Behaviour:
    name: ClassVar[str] = "honest"
    malicious: ClassVar[bool] = False
    trains: ClassVar[bool] = True
    lies: bool = False  # reports the opposite of what it measured

    def training_data(self, data: Split) -> Split:
        return data

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        return update

    def claim(self, num_samples: int) -> int:
        """The sample count it sends with its update (FedAvg weighs the update by it; nobody can check it)."""
        return num_samples

    def report(self, loss: float, scores: Sequence[float], accomplices: Sequence[bool]) -> list[float]:
        """The per-update scores put in the ballot (see participant.duties.Evidence); accomplices
        marks the updates of fellow attackers (known to colluding attackers only)."""
        return [-s for s in scores] if self.lies else list(scores)

    def align(self, alignments: Sequence[float], accomplices: Sequence[bool]) -> list[float]:
        """The per-update alignments put in the ballot (cosines, see participant.duties.Evidence)."""
        return [-a for a in alignments] if self.lies else list(alignments)

    def report_start(self, loss: float, start_loss: float, accomplices: Sequence[bool]) -> float:
        """The starting model's loss put in the ballot: a liar mirrors the round's gain (start_loss -
        loss) around `loss`, so a round that harms it looks as helpful."""
        return max(0.0, 2 * loss - start_loss) if self.lies else start_loss


class Honest(Behaviour):
    pass


@dataclass(frozen=True)
class LabelFlip(Behaviour):
    """Trains on labels mapped y -> 9 - y: a data-poisoning attack."""

    name: ClassVar[str] = "label_flip"
    malicious: ClassVar[bool] = True

    def training_data(self, data: Split) -> Split:
        return Split(data.x, (NUM_CLASSES - 1) - data.y)


@dataclass(frozen=True)
class SignFlip(Behaviour):
    """Submits -factor times its honest update: pushes the model uphill."""

    name: ClassVar[str] = "sign_flip"
    malicious: ClassVar[bool] = True
    factor: float = 4.0

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        return [(n, -self.factor * u) for n, u in update]


@dataclass(frozen=True)
class GaussianNoise(Behaviour):
    """Submits pure noise instead of an update."""

    name: ClassVar[str] = "gaussian_noise"
    malicious: ClassVar[bool] = True
    trains: ClassVar[bool] = False
    sigma: float = 0.3

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        return [(n, rng.normal(0.0, self.sigma, u.shape).astype(np.float32)) for n, u in update]


@dataclass(frozen=True)
class Scaled(Behaviour):
    """Boosts its update by a large factor to dominate the average (model replacement)."""

    name: ClassVar[str] = "scaled"
    malicious: ClassVar[bool] = True
    factor: float = 20.0

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        return [(n, self.factor * u) for n, u in update]


@dataclass(frozen=True)
class FreeRider(Behaviour):
    """Trains nothing and submits zeros, hoping to be paid for others' work."""

    name: ClassVar[str] = "free_rider"
    malicious: ClassVar[bool] = True
    trains: ClassVar[bool] = False

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        return [(n, np.zeros_like(u)) for n, u in update]


@dataclass(frozen=True)
class TinyStep(GaussianNoise):
    """A free rider that hides: trains nothing and submits a tiny random step, which is not zero."""

    name: ClassVar[str] = "tiny_step"
    sigma: float = 1e-3


@dataclass(frozen=True)
class Intermittent(SignFlip):
    """Attacks (a boosted sign flip) in a seeded share of its rounds and is honest in the others,
    to keep its stake while still poisoning."""

    name: ClassVar[str] = "intermittent"
    attack_share: float = 0.5

    def transform(self, update: Params, rng: np.random.Generator) -> Params:
        if rng.random() >= self.attack_share:
            return update
        return super().transform(update, rng)


@dataclass(frozen=True)
class Stealthy(SignFlip):
    """Negates its update without boosting it: the size of an honest update, the least harm that
    still points the model the wrong way, to stay under any threshold on size or loss."""

    name: ClassVar[str] = "stealthy"
    factor: float = 1.0


@dataclass(frozen=True)
class Colluding(SignFlip):
    """A boosted sign flip whose accomplices coordinate their votes: as voters they praise every
    accomplice's update and condemn every other one."""

    name: ClassVar[str] = "colluding"

    def report(self, loss: float, scores: Sequence[float], accomplices: Sequence[bool]) -> list[float]:
        """Helpful for an accomplice's update, harmful for every other one, by more than twice the
        voter's loss: beyond any bar the chain sets on the median voter's relative score (a half
        of the loss, the matrix's colluders until the twenty-first round of the parameter study,
        stayed under condemn_bps for an honest update that barely moved the loss)."""
        return [abs(s) + 2 * loss if mine else -abs(s) - 2 * loss for s, mine in zip(scores, accomplices)]

    def align(self, alignments: Sequence[float], accomplices: Sequence[bool]) -> list[float]:
        """Fully aligned for an accomplice's update (the spread alone cannot condemn it), opposed otherwise."""
        return [1.0 if mine else -1.0 for mine in accomplices]

    def report_start(self, loss: float, start_loss: float, accomplices: Sequence[bool]) -> float:
        """A round with an accomplice's update helps beyond measure (the start's loss three times
        `loss`), one without harms as much as a ballot can say (a start at no loss at all)."""
        return 3 * loss if any(accomplices) else 0.0


@dataclass(frozen=True)
class InflatedClaim(Stealthy):
    """A sign flip at an honest update's size (under any norm bound) that claims a hundred times
    the samples it has, so that FedAvg weighs it above every honest update of its round."""

    name: ClassVar[str] = "inflated_claim"
    inflation: int = 100

    def claim(self, num_samples: int) -> int:
        return self.inflation * num_samples


@dataclass(frozen=True)
class LyingVoter(Behaviour):
    """Trains honestly but always reports the opposite of what it measured."""

    name: ClassVar[str] = "lying_voter"
    malicious: ClassVar[bool] = True
    lies: bool = True


@dataclass(frozen=True)
class CopyUpdate(Behaviour):
    """A lazy proposer: trains nothing and submits the latest update it can see from another
    proposer, perturbed (1% noise) so that it is not an exact copy."""

    name: ClassVar[str] = "copy_update"
    malicious: ClassVar[bool] = True
    trains: ClassVar[bool] = False
    noise: float = 0.01

    def copy(self, seen: Sequence[Params], own: Params, rng: np.random.Generator) -> Params:
        """seen: updates already revealed, oldest first; with none, a tiny random step."""
        if not seen:
            return [(n, rng.normal(0.0, 1e-3, u.shape).astype(np.float32)) for n, u in own]
        return [(n, (u * (1 + rng.normal(0.0, self.noise, u.shape))).astype(np.float32)) for n, u in seen[-1]]


SeenBallot = tuple[int, int, Sequence[int], Sequence[int]]  # loss, start loss, scores, alignments


@dataclass(frozen=True)
class CopyBallot(Behaviour):
    """A lazy voter: trains honestly but measures nothing when it votes, and copies the latest ballot
    it can see (its losses, and its scores and alignments cycled to this round's number of updates)."""

    name: ClassVar[str] = "copy_ballot"
    malicious: ClassVar[bool] = True

    def copy(self, seen: Sequence[SeenBallot], count: int) -> SeenBallot:
        """seen: (loss, start loss, scores, alignments) of ballots already revealed, oldest first;
        with none, no opinion."""
        if not seen or not seen[-1][2]:
            return 10_000, 10_000, [0] * count, []
        loss, start_loss, scores, alignments = seen[-1]
        return loss, start_loss, _cycled(scores, count), _cycled(alignments, count) if alignments else []


def _cycled(values: Sequence[int], count: int) -> list[int]:
    return [values[i % len(values)] for i in range(count)]


LAZY = (CopyUpdate, CopyBallot)
# attackers who cheat as voters only: their updates are honest work
HONEST_PROPOSERS = (LyingVoter, CopyBallot)

ATTACKS: dict[str, type[Behaviour]] = {
    b.name: b
    for b in (
        LabelFlip,
        SignFlip,
        GaussianNoise,
        Scaled,
        FreeRider,
        TinyStep,
        LyingVoter,
        Intermittent,
        Stealthy,
        Colluding,
        InflatedClaim,
        CopyUpdate,
        CopyBallot,
    )
}


def make(name: str, lies: bool = False) -> Behaviour:
    """A behaviour by name; attackers may also lie when drawn as voters."""
    if name == "honest":
        return Honest()
    cls = ATTACKS[name]
    return cls() if cls in (LyingVoter, Colluding, *LAZY) else cls(lies=lies)


def assign(
    participants: int, attacker_fraction: float, attack: str, lies: bool = False, seed: int = 0
) -> list[Behaviour]:
    """One behaviour per participant: round(fraction * participants) attackers at seeded positions.

    The simulator, its baselines and the demo all call this, so one seed means the same attackers."""
    rng = np.random.default_rng(seed)
    attackers = set(rng.choice(participants, int(round(attacker_fraction * participants)), replace=False).tolist())
    return [make(attack, lies) if i in attackers else Honest() for i in range(participants)]
