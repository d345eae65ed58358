"""Messages as the rules see them: typed, decoded and checked without state (Cosmos' ValidateBasic).

`validate_basic` is the trust boundary for a message's contents: it turns a wire `tx_pb2.Msg`
into one of the dataclasses below or raises a coded TxError. CheckTx, PrepareProposal and
ProcessProposal all run it (through txs.verify_tx), so a block never carries a message that
fails it, and the handlers in staking.py, rounds.py and aggregate_reports.py never touch transport types.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from abci_app import copies, sealing, wire
from abci_app.codes import Code, TxError
from abci_app.units import BPS
from flchain.v1 import tx_pb2, types_pb2


@dataclass(frozen=True)
class Bond:
    action: ClassVar[str] = "bond"
    amount: int


@dataclass(frozen=True)
class Unbond:
    action: ClassVar[str] = "unbond"
    amount: int


@dataclass(frozen=True)
class FixedTensor:
    name: str
    values: np.ndarray  # int64 fixed point, within the int32 range

    def __post_init__(self) -> None:
        self.values.setflags(write=False)  # shared by every replay of a cached, verified tx

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)


@dataclass(frozen=True)
class CommitUpdate:
    action: ClassVar[str] = "commit_update"
    round: int
    commitment: bytes


@dataclass(frozen=True)
class CommitBallot:
    action: ClassVar[str] = "commit_ballot"
    round: int
    commitment: bytes


@dataclass(frozen=True)
class Reference:
    """An update kept in an object store (types_pb2.BlobRef): the chain sees its digest, never its bytes."""

    blob_digest: bytes
    size: int
    manifest: tuple[tuple[str, tuple[int, ...], types_pb2.DType], ...]  # (name, shape, dtype), in order

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(name, shape) for name, shape, _ in self.manifest]

    def to_proto(self) -> types_pb2.BlobRef:
        return types_pb2.BlobRef(
            digest=self.blob_digest,
            size=self.size,
            manifest=[types_pb2.TensorSpec(name=n, shape=s, dtype=d) for n, s, d in self.manifest],
        )


@dataclass(frozen=True)
class SubmitUpdate:
    """The reveal of a committed update: inline tensors, or a reference (exactly one of the two)."""

    action: ClassVar[str] = "submit_update"
    round: int
    num_samples: int
    tensors: tuple[FixedTensor, ...]
    salt: bytes
    digest: bytes  # sealing.update_digest (or reference_digest) of the update as sent
    reference: Reference | None = None
    fingerprint: tuple[int, ...] = ()  # by reference: the file's, for the copy rule (abci_app/copies.py)


@dataclass(frozen=True)
class ReportAggregate:
    action: ClassVar[str] = "report_aggregate"
    round: int
    blob_digest: bytes
    size: int
    norms: tuple[int, ...]  # of the included updates, in the round's order


@dataclass(frozen=True)
class Vote:
    """The reveal of a committed ballot."""

    action: ClassVar[str] = "vote"
    round: int
    loss: int  # held-out loss with every update, 1e-4 nats
    start_loss: int  # held-out loss where the round's step starts (no update), 1e-4 nats
    scores: tuple[int, ...]  # per update: loss without it minus `loss`, 1e-4 nats
    alignments: tuple[int, ...]  # per update (or none): cosine with the FedAvg of the others, bps
    salt: bytes
    digest: bytes  # sealing.ballot_digest of the losses, scores and alignments


Message = Bond | Unbond | CommitUpdate | CommitBallot | SubmitUpdate | Vote | ReportAggregate
MAX_LOSS = 10**9  # 1e5 nats: far beyond any real loss, and small enough that products stay in int64
UNUSABLE_SCORE = -MAX_LOSS  # a voter's score for an update by reference it could not use (see MsgVote)
# A safetensors file is its tensors' bytes plus an 8-byte length and a JSON header; a header
# beyond this is not one a well-formed manifest needs.
MAX_BLOB_HEADER_BYTES = 1 << 20
_REFERENCE_DTYPES = (types_pb2.DTYPE_FLOAT32, types_pb2.DTYPE_FIXED32)


def validate_basic(msg: tx_pb2.Msg, params: types_pb2.Params) -> Message:
    """The checks that need nothing but the message and the chain's params."""
    kind = msg.WhichOneof("sum")
    if kind == "bond":
        if msg.bond.amount == 0:
            raise TxError(Code.INVALID_AMOUNT, "bond amount must be positive")
        return Bond(msg.bond.amount)
    if kind == "unbond":
        if msg.unbond.amount == 0:
            raise TxError(Code.INVALID_AMOUNT, "unbond amount must be positive")
        return Unbond(msg.unbond.amount)
    if kind in ("commit_update", "commit_ballot"):
        commit = getattr(msg, kind)
        if len(commit.commitment) != sealing.DIGEST_BYTES:
            raise TxError(
                Code.BAD_COMMITMENT,
                f"a commitment is a {sealing.DIGEST_BYTES}-byte sha256 digest, got {len(commit.commitment)} bytes",
            )
        cls = CommitUpdate if kind == "commit_update" else CommitBallot
        return cls(commit.round, commit.commitment)
    if kind == "submit_update":
        update = msg.submit_update
        if not 1 <= update.num_samples <= params.max_num_samples:
            raise TxError(
                Code.BAD_NUM_SAMPLES, f"num_samples must be in 1..{params.max_num_samples}, got {update.num_samples}"
            )
        _check_salt(update.salt)
        if update.HasField("ref"):
            if update.tensors:
                raise TxError(Code.BAD_REFERENCE, "an update carries tensors or a reference, not both")
            reference = reference_of(update.ref)
            _check_fingerprint(update.fingerprint)
            return SubmitUpdate(
                update.round,
                update.num_samples,
                (),
                update.salt,
                sealing.reference_digest(update.num_samples, reference.blob_digest, reference.size, reference.manifest),
                reference,
                tuple(update.fingerprint),
            )
        if update.fingerprint:
            raise TxError(Code.BAD_FINGERPRINT, "an inline update carries no fingerprint: the chain computes it")
        return SubmitUpdate(
            update.round,
            update.num_samples,
            tuple(FixedTensor(t.name, wire.decode_tensor(t, params.frac_bits)) for t in update.tensors),
            update.salt,
            sealing.update_digest(update.num_samples, ((t.name, t.shape, t.dtype, t.values) for t in update.tensors)),
        )
    if kind == "vote":
        vote = msg.vote
        for name in ("loss", "start_loss"):  # a ballot without its start loss (an older client) is refused
            value = getattr(vote, name)
            if value == 0 or value > MAX_LOSS:
                raise TxError(Code.BAD_BALLOT, f"a ballot's {name} must be in 1..{MAX_LOSS} (1e-4 nats), got {value}")
        if len(vote.scores) > params.num_proposers:
            raise TxError(
                Code.BAD_BALLOT, f"a ballot scores at most {params.num_proposers} updates, got {len(vote.scores)}"
            )
        if any(abs(s) > MAX_LOSS for s in vote.scores):
            raise TxError(Code.BAD_BALLOT, f"a score must be within +-{MAX_LOSS} (1e-4 nats)")
        if vote.alignments and len(vote.alignments) != len(vote.scores):
            raise TxError(
                Code.BAD_BALLOT,
                f"a ballot gives one alignment per score or none, got {len(vote.alignments)} for {len(vote.scores)}",
            )
        if any(abs(a) > BPS for a in vote.alignments):
            raise TxError(Code.BAD_BALLOT, f"an alignment is a cosine in basis points, within +-{BPS}")
        _check_salt(vote.salt)
        scores, alignments = tuple(vote.scores), tuple(vote.alignments)
        digest = sealing.ballot_digest(vote.loss, vote.start_loss, scores, alignments)
        return Vote(vote.round, vote.loss, vote.start_loss, scores, alignments, vote.salt, digest)
    if kind == "report_aggregate":
        report = msg.report_aggregate
        if len(report.digest) != sealing.DIGEST_BYTES or report.size == 0:
            raise TxError(Code.BAD_REFERENCE, "an aggregate report carries a 32-byte sha256 digest and a positive size")
        if len(report.norms) > params.num_proposers:
            raise TxError(
                Code.BAD_AGGREGATE_REPORT,
                f"a round includes at most {params.num_proposers} updates; the report gives {len(report.norms)} norms",
            )
        if any(not 1 <= n <= params.max_update_norm for n in report.norms):
            raise TxError(
                Code.BAD_AGGREGATE_REPORT, f"an included update's norm is within [1, {params.max_update_norm}]"
            )
        return ReportAggregate(report.round, report.digest, report.size, tuple(report.norms))
    raise TxError(Code.TX_UNDECODABLE, "message is empty or of an unknown type")


def reference_of(ref: types_pb2.BlobRef) -> Reference:
    """A BlobRef whose form is sound; whether it matches the model is the handler's check."""
    if len(ref.digest) != sealing.DIGEST_BYTES:
        raise TxError(Code.BAD_REFERENCE, f"a reference's digest is a 32-byte sha256, got {len(ref.digest)} bytes")
    if not ref.manifest:
        raise TxError(Code.BAD_REFERENCE, "a reference's manifest is empty")
    if len({t.name for t in ref.manifest}) != len(ref.manifest):
        raise TxError(Code.BAD_REFERENCE, "a reference's manifest repeats a tensor name")
    if any(t.dtype not in _REFERENCE_DTYPES for t in ref.manifest):
        raise TxError(Code.BAD_REFERENCE, "a referenced tensor is DTYPE_FLOAT32 or DTYPE_FIXED32")
    data_bytes = sum(4 * _count(t.shape) for t in ref.manifest)
    if not data_bytes < ref.size <= data_bytes + MAX_BLOB_HEADER_BYTES:
        raise TxError(
            Code.BAD_REFERENCE,
            f"a file of {ref.size} bytes cannot hold the manifest's {data_bytes} bytes of tensors and their header",
        )
    return Reference(ref.digest, ref.size, tuple((t.name, tuple(t.shape), t.dtype) for t in ref.manifest))


def _check_fingerprint(values: Sequence[int]) -> None:
    if not values:
        raise TxError(Code.BAD_FINGERPRINT, "an update by reference carries its fingerprint (abci_app/copies.py)")
    if len(values) > copies.SIZE:
        raise TxError(Code.BAD_FINGERPRINT, f"a fingerprint has at most {copies.SIZE} values, got {len(values)}")
    if int(np.abs(np.asarray(values, dtype=np.int64)).max()) > 1 << copies.VALUE_BITS:
        raise TxError(Code.BAD_FINGERPRINT, f"a fingerprint's values are within +-2^{copies.VALUE_BITS}")


def _count(shape) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _check_salt(salt: bytes) -> None:
    if len(salt) != sealing.SALT_BYTES:
        raise TxError(
            Code.BAD_SALT,
            f"a reveal carries the {sealing.SALT_BYTES}-byte salt of its commitment, got {len(salt)} bytes",
        )
