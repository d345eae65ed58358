"""What a participant computes when drawn: an update as proposer, a judgement as voter."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from participant.behaviours import Behaviour
from participant.ml.data import ClientData
from participant.ml.models import Params
from participant.ml.training import TrainConfig, add, delta, evaluate, train


def make_update(
    behaviour: Behaviour, kind: str, global_params: Params, data: ClientData, config: TrainConfig, seed: int
) -> Params:
    """New weights minus the global model, after the behaviour has had its way."""
    if behaviour.trains:
        honest = delta(train(kind, global_params, behaviour.training_data(data.train), config, seed), global_params)
    else:
        honest = [(name, np.zeros_like(values)) for name, values in global_params]
    return behaviour.transform(honest, np.random.default_rng(seed))


@dataclass(frozen=True)
class Evidence:
    """What a voter measures on its held-out split: proposers + 1 evaluations."""

    loss: float  # held-out loss of the global model plus the FedAvg of every update
    scores: list[float]  # per update: the loss without it (FedAvg of the others) minus `loss`
    accuracy: float  # held-out accuracy with every update (for the logs)


def judge(kind: str, global_params: Params, updates: Sequence[tuple[Params, int]], data: ClientData) -> Evidence:
    """Leave-one-out evidence on each update, from the voter's own held-out split.

    updates: (update, num_samples) in Round.submitted order. Leaving an update out reweights the
    others exactly as the chain's FedAvg would; with a single update, leaving it out is the
    global model itself. Loss is steadier than accuracy on a few dozen samples."""
    weights = [float(n) for _, n in updates]
    total = sum(weights)
    sums: Params = [
        (name, np.sum([w * u[j][1].astype(np.float64) for (u, _), w in zip(updates, weights)], axis=0))
        for j, (name, _) in enumerate(global_params)
    ]
    accuracy, loss = evaluate(kind, add(global_params, _scaled(sums, 1 / total)), data.test)
    scores = []
    for (update, _), w in zip(updates, weights):
        if total == w:
            without = global_params
        else:
            rest = [(name, s - w * u.astype(np.float64)) for (name, s), (_, u) in zip(sums, update)]
            without = add(global_params, _scaled(rest, 1 / (total - w)))
        scores.append(evaluate(kind, without, data.test)[1] - loss)
    return Evidence(loss, scores, accuracy)


def _scaled(params: Params, factor: float) -> Params:
    return [(name, (factor * values).astype(np.float32)) for name, values in params]
