"""Models and updates as a participant handles them, inline on the chain or by reference in an object
store: fetched and verified, published, and the new global model computed bit-exactly by an aggregator.

The checks on an update by reference are the ones the chain makes on an inline update (shapes,
NaN/Inf, fixed-point range, a zero update, the norm bound), and that the fingerprint its proposer
revealed for the copy rule is the file's: the chain cannot make them on bytes it never sees, so
each voter makes them and scores a failing update UNUSABLE_SCORE (see MsgVote).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abci_app import aggregation, copies, norm_bound, tensors, wire
from abci_app.codes import TxError
from client import blobs
from client.object_store import BlobMissing, ObjectStore
from flchain.v1 import types_pb2


class Unusable(Exception):
    """An update by reference a voter cannot use: absent from a store that answers, not the bytes
    referenced, or beyond the bounds an inline update must meet. The proposer's fault."""


@dataclass(frozen=True)
class Published:
    """An update a proposer put in the object store: what its MsgSubmitUpdate carries."""

    ref: types_pb2.BlobRef
    fingerprint: list[int]  # abci_app/copies.py, of the fixed-point values the voters will read


class NoStore(RuntimeError):
    """The chain federates by reference and this participant has no object store configured."""


@dataclass(frozen=True)
class FixedUpdate:
    """An update as the chain's FedAvg reads it: int64 fixed-point arrays, in model order."""

    weight: int  # in the round's FedAvg (Update.weight: its claimed samples, at most the sample bound)
    arrays: list[np.ndarray]
    norm: int  # L2 norm in fixed point, rounded up (abci_app/norm_bound.norm)


def _require(store: ObjectStore | None) -> ObjectStore:
    if store is None:
        raise NoStore(
            "this chain's model is federated by reference: give it an object store (--store URL or FLCHAIN_STORE_URL)"
        )
    return store


def model_tensors(model: types_pb2.GlobalModel, store: ObjectStore | None) -> list[types_pb2.Tensor]:
    """The global model's FIXED32 tensors, from the chain or, by reference, from the store (verified).
    A global model the chain adopted must be in the store; its absence is the store's fault, so it
    raises (BlobMissing, StoreUnavailable) rather than being judged."""
    if not model.HasField("ref"):
        return list(model.tensors)
    return blobs.decode(_require(store).get(model.ref.digest, model.ref.size), model.ref)


def model_step(
    model: types_pb2.GlobalModel, current: Sequence[types_pb2.Tensor], store: ObjectStore | None
) -> list[np.ndarray]:
    """The global model's last move, which server momentum repeats in part: from the chain, or, by
    reference, the current tensors minus the version before (from the store). Empty before the
    first move."""
    if not model.HasField("ref"):
        return fixed_arrays(model.step)
    if not model.HasField("previous"):
        return []
    before = blobs.decode(_require(store).get(model.previous.digest, model.previous.size), model.previous)
    # tensor by tensor: a large model is never held whole in int64 twice over
    return aggregation.last_step((tensors.read(t) for t in before), (tensors.read(t) for t in current))


def judged_model(
    current: Sequence[types_pb2.Tensor], step: Sequence[np.ndarray], beta_bps: int
) -> list[types_pb2.Tensor]:
    """The model voters judge updates from: the global model plus the momentum the chain will add
    whatever the updates are (aggregation.lookahead), as FIXED32 tensors."""
    if not step or beta_bps == 0:
        return list(current)
    return [
        tensors.encode(t.name, aggregation.lookahead([tensors.read(t)], [s], beta_bps)[0])
        for t, s in zip(current, step, strict=True)
    ]


def fixed_arrays(tensor_list: Sequence[types_pb2.Tensor]) -> list[np.ndarray]:
    return [tensors.read(t) for t in tensor_list]


def fetch_update(
    update: types_pb2.Update,
    model: types_pb2.GlobalModel,
    params: types_pb2.Params,
    store: ObjectStore | None,
    check_fingerprint: bool = True,
) -> FixedUpdate:
    """A round's update as fixed point. By reference: fetched, verified and checked like an inline
    update, or Unusable; StoreUnavailable (the store does not answer) is raised as is. An aggregator
    need not check the fingerprint again: the voters did, and it only matters to the copy rule."""
    if not update.HasField("ref"):
        return FixedUpdate(update.weight, fixed_arrays(update.tensors), update.norm)
    try:
        sent = blobs.decode(_require(store).get(update.ref.digest, update.ref.size), update.ref)
    except (BlobMissing, blobs.BlobInvalid) as err:
        raise Unusable(str(err)) from None
    expected = [(t.name, tuple(t.shape)) for t in model.ref.manifest]
    if [(t.name, tuple(t.shape)) for t in sent] != expected:
        raise Unusable("the update's tensors do not match the model")
    try:  # the chain's own checks of an inline update
        arrays = [wire.decode_tensor(t, params.frac_bits) for t in sent]
        squared = wire.check_norm(arrays, params.max_update_norm)
    except TxError as err:
        raise Unusable(err.message) from None
    if check_fingerprint and copies.fingerprint_of(arrays).tolist() != list(update.fingerprint):
        raise Unusable("the fingerprint its proposer revealed is not the file's")
    return FixedUpdate(update.weight, arrays, norm_bound.root_up(squared))


def publish_update(store: ObjectStore | None, update: Sequence[tuple[str, np.ndarray]], frac_bits: int) -> Published:
    """A proposer's float update into the store, with the fingerprint of the values voters will read."""
    sent = [wire.encode_float(name, values) for name, values in update]
    data, ref = blobs.file_of(sent)
    _require(store).put(data)
    return Published(ref, copies.fingerprint_of([wire.decode_tensor(t, frac_bits) for t in sent]).tolist())


def publish_aggregate(
    store: ObjectStore | None,
    model: Sequence[types_pb2.Tensor],
    included: Sequence[FixedUpdate],
    bound: int,
    step: Sequence[np.ndarray] = (),
    beta_bps: int = 0,
) -> types_pb2.BlobRef:
    """An aggregator's duty: the new global model (aggregation.next_model of the included updates,
    each scaled down to the round's norm bound as the chain does inline, plus beta times the last
    step; bit-exact), stored; the reference whose digest and size it reports. Every honest
    aggregator gets the same bytes."""
    weighted = [(u.weight, norm_bound.clip(u.arrays, u.norm, bound)) for u in included]
    new = aggregation.next_model(fixed_arrays(model), weighted, step, beta_bps)
    fixed = [tensors.encode(t.name, values) for t, values in zip(model, new)]
    data, ref = blobs.file_of(fixed)
    _require(store).put(data)
    return ref


def model_file(model: Sequence[tuple[str, np.ndarray]], frac_bits: int) -> tuple[bytes, types_pb2.BlobRef]:
    """A genesis model by reference: float weights converted as the chain converts them, as the file
    to store and the reference genesis holds (the file may be stored later: its key is its digest)."""
    fixed = [
        tensors.encode(name, wire.decode_tensor(wire.encode_float(name, values), frac_bits)) for name, values in model
    ]
    return blobs.file_of(fixed)
