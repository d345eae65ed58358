"""Tensors on the wire: what participants send (FLOAT32) and how the chain checks it on the way in.

Everything here reads untrusted bytes: every failure is a coded TxError. A FLOAT32 tensor is
converted once to int64 fixed point (value * 2^frac_bits): multiplying by a power of two and
rounding half to even are exact IEEE-754 operations, so every CPU gets the same integers. What
the chain keeps afterwards is read back with abci_app.tensors, without these checks.
"""

from collections.abc import Sequence

import numpy as np

from abci_app.codes import Code, TxError
from abci_app.tensors import INT32_MAX, INT32_MIN, squared_norm
from flchain.v1 import types_pb2

_WIRE = {types_pb2.DTYPE_FLOAT32: np.dtype("<f4"), types_pb2.DTYPE_FIXED32: np.dtype("<i4")}


def encode_float(name: str, values: np.ndarray) -> types_pb2.Tensor:
    """Float array -> FLOAT32 wire tensor (how participants send updates and genesis models)."""
    return types_pb2.Tensor(
        name=name,
        shape=list(values.shape),
        dtype=types_pb2.DTYPE_FLOAT32,
        values=np.asarray(values, dtype="<f4").tobytes(),
    )


def decode_tensor(tensor: types_pb2.Tensor, frac_bits: int) -> np.ndarray:
    """Untrusted wire tensor -> int64 fixed-point array of its shape. Raises TxError on bad input."""
    wire = _WIRE.get(tensor.dtype)
    if wire is None:
        raise TxError(Code.BAD_SHAPE, f"tensor {tensor.name!r}: unsupported dtype {tensor.dtype}")
    count = int(np.prod(tensor.shape, dtype=np.int64)) if tensor.shape else 1
    if len(tensor.values) != count * 4:
        raise TxError(
            Code.BAD_SHAPE,
            f"tensor {tensor.name!r}: {len(tensor.values)} bytes for shape {list(tensor.shape)} (expected {count * 4})",
        )
    raw = np.frombuffer(tensor.values, dtype=wire).reshape(tuple(tensor.shape))
    if wire.kind == "i":
        return raw.astype(np.int64)
    values = raw.astype(np.float64)
    if not np.isfinite(values).all():
        raise TxError(Code.NON_FINITE, f"tensor {tensor.name!r} contains NaN or Inf")
    fixed = np.rint(np.ldexp(values, frac_bits))
    if fixed.size and (fixed.min() < INT32_MIN or fixed.max() > INT32_MAX):
        raise TxError(
            Code.NORM_TOO_LARGE,
            f"tensor {tensor.name!r} has a value beyond the fixed-point range (|x| < {2.0 ** (31 - frac_bits):g})",
        )
    return fixed.astype(np.int64)


def check_norm(arrays: Sequence[np.ndarray], max_norm: int) -> int:
    """An update's L2 norm, exact in integers: not zero, not above the bound. Raises TxError;
    returns the squared norm it checked (so a caller that needs the norm sums no squares again)."""
    norm2 = squared_norm(arrays)
    if norm2 == 0:  # a free rider's update: it would dilute the average and still earn the reward
        raise TxError(Code.EMPTY_UPDATE, "update changes nothing (zero in fixed point); a proposer must train")
    if norm2 > max_norm**2:
        raise TxError(Code.NORM_TOO_LARGE, f"update norm {norm2**0.5:.0f} exceeds the bound {max_norm} (fixed point)")
    return norm2
