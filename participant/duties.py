"""What a participant computes when drawn: an update as proposer, a judgement as voter."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from participant.learner import Part
from participant.params import Params


@dataclass(frozen=True)
class Evidence:
    """What a voter measures on its own data: the starting model, every update, and each left out."""

    loss: float  # loss of the round's starting model plus the FedAvg of every update
    scores: list[float]  # per update: the loss without it (FedAvg of the others) minus `loss`
    alignments: list[float]  # per update: cosine between it and the FedAvg of the others (0 alone)
    start_loss: float  # loss of the starting model itself: whether the updates together help


def part_for(count: int, round_id: int) -> Part | None:
    """The part of its data a voter measures a round of `count` updates on, so that its work stays
    count + 1 measures of all of it: with two updates or more it measures count + 2 models (the
    start, every update, each left out), each on all but every (count + 2)-th sample, a different
    slice left out each round; with one, the start is that update left out, and all data is used."""
    return Part(count + 2, round_id % (count + 2)) if count >= 2 else None


def judge(loss_of: Callable[[Params], float], start: Params, updates: Sequence[tuple[Params, int]]) -> Evidence:
    """Leave-one-out evidence on each update, from the voter's own data (loss_of measures a model,
    on the part part_for gives). start: where the round's step starts, the global model plus the
    server momentum.

    updates: (update, weight) in Round.submitted order, each weighing what the chain gives it
    (Update.weight: its claimed samples, at most the round's sample bound). Leaving an update out
    reweights the others exactly as the chain's FedAvg would; with a single update, leaving it out is the
    starting model itself. Loss is steadier than accuracy on a few dozen samples. The start's own
    loss tells whether the updates together help, which leaving one out cannot: when most of a
    round's updates push the same wrong way, each looks like the others (see abci_app.judgement).
    The alignments cost no evaluation: they tell an honest update that overshot (it still points
    with the others) from one that points against them.

    The weighted sum of the updates is held once in float64; everything else is computed a chunk
    at a time (_CHUNK values), so a large model's voter holds one float64 copy, not four."""
    weights = [float(n) for _, n in updates]
    total = sum(weights)
    sums = [np.zeros(values.size, np.float64) for _, values in start]  # flat, as the chunks read them
    for (update, _), w in zip(updates, weights):
        for acc, (_, values) in zip(sums, update):
            for i, chunk in _chunks(values):
                acc[i : i + chunk.size] += w * chunk.astype(np.float64)
    start_loss = loss_of(start)
    loss = loss_of(_moved(start, sums, None, 0.0, 1 / total))
    scores, alignments = [], []
    for (update, _), w in zip(updates, weights):
        if total == w:  # alone: leaving it out is the start, already measured
            scores.append(start_loss - loss)
            alignments.append(0.0)
            continue
        without = _moved(start, sums, update, w, 1 / (total - w))
        scores.append(loss_of(without) - loss)
        alignments.append(_cosine_to_rest(update, sums, w))
    return Evidence(loss, scores, alignments, start_loss)


_CHUNK = 1 << 20  # float64 copies of a chunk at a time, not of a large model's whole tensor


def _chunks(values: np.ndarray):
    """(offset, chunk) over a tensor read as one flat vector."""
    flat = values.ravel()
    for i in range(0, flat.size, _CHUNK):
        yield i, flat[i : i + _CHUNK]


def _moved(start: Params, sums: list[np.ndarray], left_out: Params | None, weight: float, factor: float) -> Params:
    """start + factor * (sums - weight * left_out), in float32: the starting model moved by the FedAvg
    of the updates (of all of them where left_out is None)."""
    moved = []
    for k, (name, base) in enumerate(start):
        out = np.empty(base.size, np.float32)
        flat = base.ravel()
        for i, rest in _rest_chunks(sums[k], left_out[k][1] if left_out is not None else None, weight):
            out[i : i + rest.size] = flat[i : i + rest.size] + (factor * rest).astype(np.float32)
        moved.append((name, out.reshape(base.shape)))
    return moved


def _rest_chunks(total: np.ndarray, left_out: np.ndarray | None, weight: float):
    """(offset, chunk of total - weight * left_out) in float64, left_out read as one flat vector."""
    if left_out is None:
        yield from _chunks(total)
        return
    for i, chunk in _chunks(left_out):
        yield i, total[i : i + chunk.size] - weight * chunk.astype(np.float64)


def _cosine_to_rest(update: Params, sums: list[np.ndarray], weight: float) -> float:
    """Cosine between an update and the weighted sum of the others (their FedAvg's direction), read as
    one vector each; 0 where either is all zeros. One pass: each chunk gives the dot product and
    both squared norms."""
    dot = a_squared = b_squared = 0.0
    for (_, values), total in zip(update, sums):
        for (_, xc), (_, yc) in zip(_chunks(values), _rest_chunks(total, values, weight)):
            xc = xc.astype(np.float64, copy=False)
            dot += float(xc @ yc)
            a_squared += float(xc @ xc)
            b_squared += float(yc @ yc)
    norms = float(np.sqrt(a_squared * b_squared))
    return dot / norms if norms > 0 else 0.0
