"""FedAvg in integer fixed point: a weighted mean that is exact and independent of input order."""

from collections.abc import Sequence

import numpy as np

from abci_app.tensors import INT32_MAX, INT32_MIN


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


def next_model(model: Sequence[np.ndarray], updates: Sequence[tuple[int, Sequence[np.ndarray]]]) -> list[np.ndarray]:
    """The global model after a round: model + FedAvg of its included updates. Defined bit-exactly,
    so every aggregator of a model by reference computes the same file (and so the same digest)."""
    return apply_delta(model, fedavg(updates))
