"""What a participant brings to the chain: a way to train an update from the global model, and a
way to measure a model's loss on data it keeps to itself.

The runtime and the duties need nothing more, so any model and any data fit: any Flower
NumPyClient (`participant.flower.FlowerLearner`), or the built-in digits models with the attack
behaviours of the experiments (`participant.digits.DigitsLearner`).
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from participant.params import Params


@dataclass(frozen=True)
class Part:
    """The samples a voter measures a round's models on: all but every `period`-th, from `phase`.
    A voter measures one model more than the round has updates plus one (the starting model, see
    participant.duties), each on (period - 1) / period of its data, so that its work stays what
    updates + 1 measures of all its data cost."""

    period: int
    phase: int

    def indices(self, count: int) -> np.ndarray:
        """The kept positions among `count` samples: (period - 1) / period of them, rounded down, so
        that `period` measures cost no more than period - 1 of all (all of them where that is none)."""
        every = np.arange(count)
        kept = every[every % self.period != self.phase][: count * (self.period - 1) // self.period]
        return kept if kept.size else every


class Learner(Protocol):
    def train(self, global_params: Params, round_id: int) -> tuple[Params, int]:
        """(update, num_samples): the new weights minus the global model, and how many local
        samples trained them (FedAvg's weight)."""
        ...

    def loss(self, params: Params, part: Part | None = None) -> float:
        """Mean loss of a model on this participant's own data (lower is better), on the given part
        of it where one is given (every model of a round's judgement is measured on the same part)."""
        ...

    def describe(self) -> str:
        """One line for logs: what model, what data."""
        ...
