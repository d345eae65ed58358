"""FedAvg with server momentum in integer fixed point: exact, and independent of input order."""

from collections.abc import Iterable, Sequence

import numpy as np

from abci_app.tensors import INT32_MAX, INT32_MIN
from abci_app.units import BPS


def fedavg(updates: Sequence[tuple[int, Sequence[np.ndarray]]]) -> list[np.ndarray]:
    """Weighted mean of updates given as (num_samples, tensors), rounded half up.

    Integer sums are associative, so the result does not depend on the order of updates. int64
    cannot overflow: |value| < 2^31 and total samples < 2^32 (enforced by the params).
    """
    if not updates:
        raise ValueError("fedavg needs at least one update")
    total = sum(n for n, _ in updates)
    if not 0 < total < 2**32:
        raise ValueError(f"total samples {total} outside (0, 2^32)")
    sums = [np.zeros(t.shape, dtype=np.int64) for t in updates[0][1]]
    for num_samples, tensors in updates:
        for acc, t in zip(sums, tensors, strict=True):
            acc += np.int64(num_samples) * t
    return [(s + total // 2) // total for s in sums]


def apply_delta(model: Sequence[np.ndarray], delta: Sequence[np.ndarray]) -> list[np.ndarray]:
    """New global model = model + delta, saturated to the int32 range that state can hold."""
    return [np.clip(m + d, INT32_MIN, INT32_MAX) for m, d in zip(model, delta, strict=True)]


def momentum(step: Sequence[np.ndarray], beta_bps: int) -> list[np.ndarray]:
    """beta times the model's last move, rounded down: the share of it the next move repeats.
    An empty step (the genesis model never moved) repeats nothing."""
    return [(np.int64(beta_bps) * s.astype(np.int64)) // BPS for s in step]


def lookahead(model: Sequence[np.ndarray], step: Sequence[np.ndarray], beta_bps: int) -> list[np.ndarray]:
    """Where the next move starts: model + momentum. Voters judge updates from here, since the
    chain adds the momentum whatever the updates are."""
    if not step or beta_bps == 0:
        return [np.asarray(m, dtype=np.int64) for m in model]
    return apply_delta(model, momentum(step, beta_bps))


def next_model(
    model: Sequence[np.ndarray],
    updates: Sequence[tuple[int, Sequence[np.ndarray]]],
    step: Sequence[np.ndarray] = (),
    beta_bps: int = 0,
) -> list[np.ndarray]:
    """The global model after a round: model + FedAvg of its included updates + beta * last step
    (FedAvgM; the step is empty before the first move). Defined bit-exactly, so every aggregator
    of a model by reference computes the same file (and so the same digest)."""
    delta = fedavg(updates)
    if step and beta_bps:
        delta = [d + m for d, m in zip(delta, momentum(step, beta_bps), strict=True)]
    return apply_delta(model, delta)


def last_step(before: Iterable[np.ndarray], after: Iterable[np.ndarray]) -> list[np.ndarray]:
    """The move from one model to the next, each value saturated to int32 like a tensor in state
    (a move across nearly the whole int32 range cannot be stored whole; it never happens in practice)."""
    moves = (a.astype(np.int64) - b.astype(np.int64) for b, a in zip(before, after, strict=True))
    return [np.clip(move, INT32_MIN, INT32_MAX) for move in moves]
