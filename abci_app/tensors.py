"""Tensors on the wire and in state.

The chain holds every tensor as int64 numpy arrays in fixed point (value * 2^frac_bits) and
stores them as FIXED32. FLOAT32 input is converted once: multiplying by a power of two and
rounding half to even are exact IEEE-754 operations, so every CPU gets the same integers.
"""
from collections.abc import Sequence

import numpy as np

from abci_app.codes import Code, TxError
from flchain.v1 import types_pb2

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_WIRE = {types_pb2.DTYPE_FLOAT32: np.dtype("<f4"), types_pb2.DTYPE_FIXED32: np.dtype("<i4")}


def decode(tensor: types_pb2.Tensor, frac_bits: int) -> np.ndarray:
    """Wire tensor -> int64 fixed-point array of its shape. Raises TxError on bad input."""
    wire = _WIRE.get(tensor.dtype)
    if wire is None:
        raise TxError(Code.BAD_SHAPE, f"tensor {tensor.name!r}: unsupported dtype {tensor.dtype}")
    count = int(np.prod(tensor.shape, dtype=np.int64)) if tensor.shape else 1
    if len(tensor.values) != count * 4:
        raise TxError(Code.BAD_SHAPE, f"tensor {tensor.name!r}: {len(tensor.values)} bytes for shape "
                                      f"{list(tensor.shape)} (expected {count * 4})")
    raw = np.frombuffer(tensor.values, dtype=wire).reshape(tuple(tensor.shape))
    if wire.kind == "i":
        return raw.astype(np.int64)
    values = raw.astype(np.float64)
    if not np.isfinite(values).all():
        raise TxError(Code.NON_FINITE, f"tensor {tensor.name!r} contains NaN or Inf")
    fixed = np.rint(np.ldexp(values, frac_bits))
    if fixed.size and (fixed.min() < INT32_MIN or fixed.max() > INT32_MAX):
        raise TxError(Code.NORM_TOO_LARGE, f"tensor {tensor.name!r} has a value beyond the fixed-point range "
                                           f"(|x| < {2.0 ** (31 - frac_bits):g})")
    return fixed.astype(np.int64)


def encode(name: str, values: np.ndarray) -> types_pb2.Tensor:
    """int64 fixed-point array (already within int32) -> FIXED32 wire tensor."""
    return types_pb2.Tensor(name=name, shape=list(values.shape), dtype=types_pb2.DTYPE_FIXED32,
                            values=values.astype("<i4").tobytes())


def encode_float(name: str, values: np.ndarray) -> types_pb2.Tensor:
    """Float array -> FLOAT32 wire tensor (how participants send updates)."""
    return types_pb2.Tensor(name=name, shape=list(values.shape), dtype=types_pb2.DTYPE_FLOAT32,
                            values=np.asarray(values, dtype="<f4").tobytes())


def to_float(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """Fixed point -> float32, for participants (never used by consensus)."""
    return np.ldexp(values.astype(np.float64), -frac_bits).astype(np.float32)


def named_floats(tensor_list: Sequence[types_pb2.Tensor], frac_bits: int) -> list[tuple[str, np.ndarray]]:
    """Wire tensors (a model, a candidate's delta) as named float32 arrays a trainer can load."""
    return [(t.name, to_float(decode(t, frac_bits), frac_bits)) for t in tensor_list]


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


def check_against_model(names_shapes: Sequence[tuple[str, tuple[int, ...]]],
                        tensors: Sequence[types_pb2.Tensor]) -> None:
    """An update must carry exactly the model's tensors, in order, with the same shapes."""
    got = [(t.name, tuple(t.shape)) for t in tensors]
    if got != list(names_shapes):
        raise TxError(Code.BAD_SHAPE, f"update tensors {got} do not match the model {list(names_shapes)}")
