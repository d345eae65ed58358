"""The built-in learner of the demo and the experiments: a small torch model on one shard of
scikit-learn's digits, trained under an attack behaviour (honest by default). A real federation
brings its own model and data instead, e.g. as a Flower client (participant.flower)."""

from dataclasses import dataclass, field

import numpy as np

from participant.behaviours import Behaviour, Honest
from participant.learner import Part
from participant.ml.config import TrainConfig, training_seed
from participant.ml.data import ClientData, Split
from participant.ml.training import evaluate, train
from participant.params import Params, delta


def make_update(
    behaviour: Behaviour, kind: str, global_params: Params, data: ClientData, config: TrainConfig, seed: int
) -> Params:
    """New weights minus the global model, after the behaviour has had its way."""
    if behaviour.trains:
        trained = train(kind, global_params, behaviour.training_data(data.train), config, seed, data.typical_train)
        honest = delta(trained, global_params)
    else:
        honest = [(name, np.zeros_like(values)) for name, values in global_params]
    return behaviour.transform(honest, np.random.default_rng(seed))


def measured_on(data: Split, part: Part | None) -> Split:
    """The samples of `data` a voter measures on: all of them, or the part given."""
    if part is None:
        return data
    kept = part.indices(len(data))
    return Split(data.x[kept], data.y[kept])


@dataclass
class DigitsLearner:
    data: ClientData
    behaviour: Behaviour = field(default_factory=Honest)
    kind: str = "mlp"
    config: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def train(self, global_params: Params, round_id: int) -> tuple[Params, int]:
        seed = training_seed(self.seed, round_id)  # a restarted participant trains the same update
        update = make_update(self.behaviour, self.kind, global_params, self.data, self.config, seed)
        return update, self.behaviour.claim(len(self.data.train))

    def loss(self, params: Params, part: Part | None = None) -> float:
        """Loss on every local sample (or the part given): a voter judges other participants'
        updates, which none of its data trained, and a few dozen samples give steadier evidence than
        the held-out few."""
        return evaluate(self.kind, params, measured_on(self.data.everything, part))[1]

    def describe(self) -> str:
        return f"{self.kind} on {len(self.data.train)} digits ({len(self.data.test)} held out), {self.behaviour.name}"
