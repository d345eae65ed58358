"""Named float arrays (a model, an update) and the arithmetic on them, without torch: what the
duties, the learners and the experiments pass around."""

import numpy as np

Params = list[tuple[str, np.ndarray]]  # named float arrays, in the global model's order


def delta(new: Params, old: Params) -> Params:
    return [(name, n - o) for (name, n), (_, o) in zip(new, old, strict=True)]


def add(params: Params, step: Params, scale: float = 1.0) -> Params:
    return [(name, p + scale * d) for (name, p), (_, d) in zip(params, step, strict=True)]
