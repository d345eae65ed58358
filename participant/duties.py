"""What a participant computes when drawn: an update as proposer, a judgement as voter."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from participant.params import Params, add


@dataclass(frozen=True)
class Evidence:
    """What a voter measures on its own data: proposers + 1 evaluations."""

    loss: float  # loss of the global model plus the FedAvg of every update
    scores: list[float]  # per update: the loss without it (FedAvg of the others) minus `loss`


def judge(loss_of: Callable[[Params], float], global_params: Params, updates: Sequence[tuple[Params, int]]) -> Evidence:
    """Leave-one-out evidence on each update, from the voter's own data (loss_of measures a model).

    updates: (update, num_samples) in Round.submitted order. Leaving an update out reweights the
    others exactly as the chain's FedAvg would; with a single update, leaving it out is the
    global model itself. Loss is steadier than accuracy on a few dozen samples."""
    weights = [float(n) for _, n in updates]
    total = sum(weights)
    # accumulated in place: a large model's updates are never all held again in float64
    sums: Params = [(name, np.zeros(values.shape, np.float64)) for name, values in global_params]
    for (update, _), w in zip(updates, weights):
        for (_, acc), (_, values) in zip(sums, update):
            acc += w * values.astype(np.float64)
    loss = loss_of(add(global_params, _scaled(sums, 1 / total)))
    scores = []
    for (update, _), w in zip(updates, weights):
        if total == w:
            without = global_params
        else:
            rest = [(name, s - w * u.astype(np.float64)) for (name, s), (_, u) in zip(sums, update)]
            without = add(global_params, _scaled(rest, 1 / (total - w)))
        scores.append(loss_of(without) - loss)
    return Evidence(loss, scores)


def _scaled(params: Params, factor: float) -> Params:
    return [(name, (factor * values).astype(np.float32)) for name, values in params]
