"""Tensors too large for a tx travel as a safetensors file that a BlobRef names: this is that file's format.

A blob holds exactly its manifest's tensors (F32 for DTYPE_FLOAT32, I32 for DTYPE_FIXED32, little-endian,
no metadata) and is stored under object_key(sha256 of its bytes). safetensors lays tensors out in an order of
its own (by dtype, then name), not the order given, so `encode` yields the same bytes for the same set of
tensors in any order; the manifest keeps the order that `decode` returns. No I/O here (see client.object_store).
"""

import hashlib
from collections.abc import Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from flchain.v1 import types_pb2

# The only dtypes a blob may hold, as numpy sees the little-endian values of the wire format.
NUMPY_DTYPES = {types_pb2.DTYPE_FLOAT32: np.dtype("<f4"), types_pb2.DTYPE_FIXED32: np.dtype("<i4")}


class BlobInvalid(Exception):
    """Bytes that are not the blob a BlobRef says they are; the message is one line."""


def object_key(digest: bytes) -> str:
    """Where a blob lives in the object store: content-addressed, so a key names its bytes forever."""
    return "sha256/" + digest.hex()


def manifest(tensors: Sequence[types_pb2.Tensor]) -> list[types_pb2.TensorSpec]:
    return [types_pb2.TensorSpec(name=t.name, shape=t.shape, dtype=t.dtype) for t in tensors]


def _array(tensor: types_pb2.Tensor) -> np.ndarray:
    """A view of a wire tensor's values (no copy)."""
    if tensor.dtype not in NUMPY_DTYPES:
        raise ValueError(f"tensor {tensor.name!r}: dtype {tensor.dtype} cannot go in a blob")
    values = np.frombuffer(tensor.values, dtype=NUMPY_DTYPES[tensor.dtype])
    if values.size != np.prod(tensor.shape, dtype=np.int64):
        raise ValueError(f"tensor {tensor.name!r}: {len(tensor.values)} bytes do not fill shape {list(tensor.shape)}")
    return values.reshape(tuple(tensor.shape))


def encode(tensors: Sequence[types_pb2.Tensor]) -> bytes:
    """The blob of these tensors; ValueError if their names repeat or a tensor is malformed."""
    arrays = {t.name: _array(t) for t in tensors}
    if len(arrays) != len(tensors):
        raise ValueError("tensor names repeat: a blob holds each name once")
    return save(arrays)


def reference(data: bytes, tensors: Sequence[types_pb2.Tensor]) -> types_pb2.BlobRef:
    """What the chain holds for a blob: `data` must be encode(tensors)."""
    return types_pb2.BlobRef(digest=hashlib.sha256(data).digest(), size=len(data), manifest=manifest(tensors))


def file_of(tensors: Sequence[types_pb2.Tensor]) -> tuple[bytes, types_pb2.BlobRef]:
    """The blob of these tensors, and the reference that names it."""
    data = encode(tensors)
    return data, reference(data, tensors)


def _verify_bytes(data: bytes, ref: types_pb2.BlobRef) -> None:
    if len(data) != ref.size:
        raise BlobInvalid(f"blob {ref.digest.hex()[:16]} is {len(data)} bytes, its reference says {ref.size}")
    if hashlib.sha256(data).digest() != ref.digest:
        raise BlobInvalid(f"blob {ref.digest.hex()[:16]}: its bytes hash to another digest")


def _parse(data: bytes, ref: types_pb2.BlobRef) -> dict[str, np.ndarray]:
    try:
        return load(data)
    except (SafetensorError, KeyError, ValueError) as err:  # KeyError: a dtype numpy has no type for (BF16, F8...)
        raise BlobInvalid(f"blob {ref.digest.hex()[:16]} is no safetensors file of F32, I32 tensors: {err}") from None


def _check_tensor(array: np.ndarray, spec: types_pb2.TensorSpec) -> None:
    if array.shape != tuple(spec.shape):
        raise BlobInvalid(f"blob tensor {spec.name!r} has shape {list(array.shape)}, manifest {list(spec.shape)}")
    if spec.dtype not in NUMPY_DTYPES or array.dtype != NUMPY_DTYPES[spec.dtype]:
        raise BlobInvalid(f"blob tensor {spec.name!r} holds {array.dtype}, manifest says dtype {spec.dtype}")


def decode(data: bytes, ref: types_pb2.BlobRef) -> list[types_pb2.Tensor]:
    """The tensors of a blob, in manifest order, after checking that `data` is exactly what `ref` names."""
    _verify_bytes(data, ref)
    arrays = _parse(data, ref)
    names = [spec.name for spec in ref.manifest]
    if len(set(names)) != len(names) or set(arrays) != set(names):
        raise BlobInvalid(f"blob holds tensors {sorted(arrays)}, manifest names {names}")
    tensors = []
    for spec in ref.manifest:
        array = arrays.pop(spec.name)  # each array is dropped as soon as its bytes are copied out
        _check_tensor(array, spec)
        tensors.append(types_pb2.Tensor(name=spec.name, shape=spec.shape, dtype=spec.dtype, values=array.tobytes()))
    return tensors
