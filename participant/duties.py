"""What a participant computes when drawn: an update as proposer, a judgement as voter."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from participant.params import Params, add


@dataclass(frozen=True)
class Evidence:
    """What a voter measures on its own data: proposers + 1 evaluations."""

    loss: float  # loss of the round's starting model plus the FedAvg of every update
    scores: list[float]  # per update: the loss without it (FedAvg of the others) minus `loss`
    alignments: list[float]  # per update: cosine between it and the FedAvg of the others (0 alone)


def judge(loss_of: Callable[[Params], float], start: Params, updates: Sequence[tuple[Params, int]]) -> Evidence:
    """Leave-one-out evidence on each update, from the voter's own data (loss_of measures a model).
    start: where the round's step starts, the global model plus the server momentum.

    updates: (update, num_samples) in Round.submitted order. Leaving an update out reweights the
    others exactly as the chain's FedAvg would; with a single update, leaving it out is the
    starting model itself. Loss is steadier than accuracy on a few dozen samples. The alignments cost
    no evaluation: they tell an honest update that overshot (it still points with the others) from
    one that points against them (see abci_app.judgement)."""
    weights = [float(n) for _, n in updates]
    total = sum(weights)
    # accumulated in place: a large model's updates are never all held again in float64
    sums: Params = [(name, np.zeros(values.shape, np.float64)) for name, values in start]
    for (update, _), w in zip(updates, weights):
        for (_, acc), (_, values) in zip(sums, update):
            acc += w * values.astype(np.float64)
    loss = loss_of(add(start, _scaled(sums, 1 / total)))
    scores, alignments = [], []
    for (update, _), w in zip(updates, weights):
        if total == w:
            without, alignment = start, 0.0
        else:
            rest = [(name, s - w * u.astype(np.float64)) for (name, s), (_, u) in zip(sums, update)]
            without, alignment = add(start, _scaled(rest, 1 / (total - w))), _cosine(update, rest)
        scores.append(loss_of(without) - loss)
        alignments.append(alignment)
    return Evidence(loss, scores, alignments)


_CHUNK = 1 << 20  # float64 copies of a chunk at a time, not of a large model's whole tensor


def _cosine(a: Params, b: Params) -> float:
    """Cosine between two parameter sets read as one vector each; 0 where either is all zeros.
    One pass: each chunk is converted once and gives the dot product and both squared norms."""
    dot = a_squared = b_squared = 0.0
    for (_, x), (_, y) in zip(a, b):
        x, y = x.ravel(), y.ravel()
        for i in range(0, x.size, _CHUNK):
            xc = x[i : i + _CHUNK].astype(np.float64, copy=False)
            yc = y[i : i + _CHUNK].astype(np.float64, copy=False)
            dot += float(xc @ yc)
            a_squared += float(xc @ xc)
            b_squared += float(yc @ yc)
    norms = float(np.sqrt(a_squared * b_squared))
    return dot / norms if norms > 0 else 0.0


def _scaled(params: Params, factor: float) -> Params:
    return [(name, (factor * values).astype(np.float32)) for name, values in params]
