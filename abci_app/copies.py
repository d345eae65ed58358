"""The copy rule: an update that points where another proposer's recent update pointed is a copy.

Sealing stops copying a round-mate's work, but not work that earlier rounds revealed: a lazy
proposer can resubmit an earlier update of someone else, perturbed, and be paid for the part of it
that still helps (the matrix's copy_update earned in most cells). Honest training from a model that
has moved since, on another participant's data, does not reproduce it: in the simulator the
highest cosine of an honest update with any other proposer's update of the last 10 rounds was
0.75-0.88 in four federations, and 0.95 between two participants of a Dirichlet 0.1 federation
holding much the same classes, against 1.00 for a copy with 1% noise (study, "Twentieth
round"); a copy needs over 14% noise to fall below 0.99. So the chain keeps a
fingerprint of every revealed update for Params.copy_window_rounds rounds and condemns an update
whose cosine with another proposer's fingerprint reaches Params.copy_cosine_bps, whatever the
ballots say. A proposer's own earlier updates are not compared: a participant drawn twice may send
much the same step twice. A condemned update's fingerprint is forgotten at its tally: a copy adds
nothing its original does not, and a kept one would let a copier, condemned once, plant a trap for
its victim (whose next step, much like its last, would then read as a copy of the copier's); by
reference a false fingerprint could plant one without copying anything.

By reference the chain cannot read an update, so its proposer reveals the update's fingerprint with
it (MsgSubmitUpdate.fingerprint), and every voter, who fetches the file anyway, checks that it is the
file's: a voter that finds it is not scores the update unusable, which condemns it like a missing file.
The fingerprint is not in the commitment: the file's digest is, and it decides the fingerprint.

A fingerprint is the update itself up to SIZE values; a larger update is count-sketched into SIZE
buckets (each value added, with a sign, to one bucket picked by an integer hash of its index), which
keeps inner products in expectation (a cosine's error is about 1/sqrt(SIZE), under 0.01). Values
are then shifted right until every one is at most 2^VALUE_BITS in magnitude, so that a dot product of
two fingerprints is exact in int64, and every node computes the same cosine.
"""

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abci_app import tensors
from abci_app.judgement import UpdateVerdict
from abci_app.units import BPS
from flchain.v1 import types_pb2

SIZE = 16_384
VALUE_BITS = 24  # 2 * 24 + log2(SIZE) = 62 bits: a dot product of two fingerprints fits int64
# multiplicative hashing: index * an odd constant, whose top bits pick the bucket (and the sign)
_BUCKET_HASH = np.uint64(0x9E3779B97F4A7C15)
_SIGN_HASH = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True)
class Copy:
    of: bytes  # the proposer whose update was copied
    round: int
    cosine_bps: int


def fingerprint(update: types_pb2.Update) -> np.ndarray:
    """An update's fingerprint: computed from an inline update's tensors, or, by reference, the one
    its proposer revealed (which the voters check against the file)."""
    if update.HasField("ref"):
        return np.asarray(update.fingerprint, dtype=np.int64)
    return fingerprint_of([tensors.read(t) for t in update.tensors])


def fingerprint_of(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The fingerprint of fixed-point arrays as int64 values, each at most 2^VALUE_BITS in magnitude."""
    values = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in arrays])
    if values.size > SIZE:
        values = _sketch(values)
    top = int(np.abs(values).max(initial=0))
    shift = max(0, top.bit_length() - VALUE_BITS)
    return values >> shift  # an arithmetic shift: the same on every machine


def size_for(value_count: int) -> int:
    """How many values the fingerprint of an update of value_count values has."""
    return min(value_count, SIZE)


def _sketch(values: np.ndarray) -> np.ndarray:
    index = np.arange(values.size, dtype=np.uint64)
    # products wrap modulo 2^64, as intended; the top log2(SIZE) bits pick the bucket
    buckets = ((index * _BUCKET_HASH) >> np.uint64(65 - SIZE.bit_length())).astype(np.int64)
    signs = 1 - 2 * ((index * _SIGN_HASH) >> np.uint64(63)).astype(np.int64)
    # Summed in float64 (bincount's weights), twice as fast as an int64 np.add.at, and exact: every
    # partial sum is an integer below 2^53 (int32 values, about values.size / SIZE to a bucket), so
    # the order of the additions cannot change it and every machine gets the same integers.
    return np.bincount(buckets, weights=signs * values, minlength=SIZE).astype(np.int64)


def cosine_bps(a: np.ndarray, b: np.ndarray) -> int:
    """The cosine of two fingerprints in basis points, rounded toward zero; 0 if either is zero.
    Integers only: dot products are exact in int64 (VALUE_BITS), the root is an integer root."""
    if a.size != b.size:
        return 0
    norms = math.isqrt(int(a @ a) * int(b @ b))
    if norms == 0:
        return 0
    dot = int(a @ b)
    magnitude = min(BPS, abs(dot) * BPS // norms)  # the integer root rounds down: never past 1
    return magnitude if dot >= 0 else -magnitude


def find(prints: list[types_pb2.Fingerprint], round_id: int, threshold_bps: int) -> dict[bytes, Copy]:
    """Among the fingerprints kept (oldest round first), round_id's updates that copy another
    proposer's update of an earlier round: proposer -> the most similar such update (the earliest
    round among equals). Each fingerprint is computed once, when its round's updates are revealed."""
    found: dict[bytes, Copy] = {}
    if threshold_bps == 0:
        return found
    arrays = [(f, np.asarray(f.values, dtype=np.int64)) for f in prints]
    earlier = [(f, values) for f, values in arrays if f.round < round_id]
    for mine, values in ((f, v) for f, v in arrays if f.round == round_id):
        best: Copy | None = None
        for other, other_values in earlier:
            if other.proposer == mine.proposer:
                continue
            cosine = cosine_bps(values, other_values)
            if cosine >= threshold_bps and (best is None or cosine > best.cosine_bps):
                best = Copy(other.proposer, other.round, cosine)
        if best is not None:
            found[mine.proposer] = best
    return found


def remember(update: types_pb2.Update) -> types_pb2.Fingerprint:
    """What the chain keeps of a revealed update, inline or by reference, for the copy rule's window."""
    return types_pb2.Fingerprint(round=update.round, proposer=update.proposer, values=fingerprint(update).tolist())


def condemn(verdict: UpdateVerdict, copy: Copy) -> UpdateVerdict:
    """A copy's verdict: left out and condemned, whatever the ballots found."""
    return dataclasses.replace(verdict, included=False, condemned=True, copy_of=copy.of, copy_of_round=copy.round)
