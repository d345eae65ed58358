"""Tensors in state: int64 fixed-point arrays (value * 2^frac_bits), stored as FIXED32.

Everything here handles values the chain has already checked (abci_app.wire is the way in for
untrusted ones), so reading state back needs no checks and raises nothing.
"""

from collections.abc import Sequence

import numpy as np

from flchain.v1 import types_pb2

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def encode(name: str, values: np.ndarray) -> types_pb2.Tensor:
    """int64 fixed-point array (already within int32) -> FIXED32 tensor for state."""
    return types_pb2.Tensor(
        name=name, shape=list(values.shape), dtype=types_pb2.DTYPE_FIXED32, values=values.astype("<i4").tobytes()
    )


def read(tensor: types_pb2.Tensor) -> np.ndarray:
    """A FIXED32 tensor from state (or from a node's answer about state) -> int64 array."""
    return np.frombuffer(tensor.values, dtype="<i4").reshape(tuple(tensor.shape)).astype(np.int64)


def to_float(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """Fixed point -> float32, for participants (never used by consensus)."""
    return np.ldexp(values.astype(np.float64), -frac_bits).astype(np.float32)


def named_floats(tensor_list: Sequence[types_pb2.Tensor], frac_bits: int) -> list[tuple[str, np.ndarray]]:
    """Stored tensors (a model, a candidate's delta) as named float32 arrays a trainer can load."""
    return [(t.name, to_float(read(t), frac_bits)) for t in tensor_list]


def squared_norm(arrays: Sequence[np.ndarray]) -> int:
    """Exact sum of squares of int32-range integers, without int64 overflow.

    Each square is below 2^62; summing its high and low 32-bit halves separately keeps every
    partial sum far from 2^63 for any realistic model size.
    """
    total = 0
    for a in arrays:
        squares = a.astype(np.int64) ** 2
        total += (int((squares >> 32).sum()) << 32) + int((squares & 0xFFFFFFFF).sum())
    return total


def shapes(tensor_list: Sequence[types_pb2.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each tensor, in order: what an update must match."""
    return [(t.name, tuple(t.shape)) for t in tensor_list]
