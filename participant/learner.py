"""What a participant brings to the chain: a way to train an update from the global model, and a
way to measure a model's loss on data it keeps to itself.

The runtime and the duties need nothing more, so any model and any data fit: any Flower
NumPyClient (`participant.flower.FlowerLearner`), or the built-in digits models with the attack
behaviours of the experiments (`participant.digits.DigitsLearner`).
"""

from typing import Protocol

from participant.params import Params


class Learner(Protocol):
    def train(self, global_params: Params, round_id: int) -> tuple[Params, int]:
        """(update, num_samples): the new weights minus the global model, and how many local
        samples trained them (FedAvg's weight)."""
        ...

    def loss(self, params: Params) -> float:
        """Mean loss of a model on this participant's own data (lower is better)."""
        ...

    def describe(self) -> str:
        """One line for logs: what model, what data."""
        ...
