"""Messages as the rules see them: typed, decoded and checked without state (Cosmos' ValidateBasic).

`validate_basic` is the trust boundary for a message's contents: it turns a wire `tx_pb2.Msg`
into one of the dataclasses below or raises a coded TxError. CheckTx, PrepareProposal and
ProcessProposal all run it (through txs.verify_tx), so a block never carries a message that
fails it, and the handlers in staking.py and rounds.py never touch transport types.
"""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from abci_app import sealing, wire
from abci_app.codes import Code, TxError
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
class SubmitUpdate:
    """The reveal of a committed update."""

    action: ClassVar[str] = "submit_update"
    round: int
    num_samples: int
    tensors: tuple[FixedTensor, ...]
    salt: bytes
    digest: bytes  # sealing.update_digest of the update as sent


@dataclass(frozen=True)
class Vote:
    """The reveal of a committed ballot."""

    action: ClassVar[str] = "vote"
    round: int
    loss: int  # held-out loss with every update, 1e-4 nats
    scores: tuple[int, ...]  # per update: loss without it minus `loss`, 1e-4 nats
    salt: bytes
    digest: bytes  # sealing.ballot_digest of loss and scores


Message = Bond | Unbond | CommitUpdate | CommitBallot | SubmitUpdate | Vote
MAX_LOSS = 10**9  # 1e5 nats: far beyond any real loss, and small enough that products stay in int64


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
        return SubmitUpdate(
            update.round,
            update.num_samples,
            tuple(FixedTensor(t.name, wire.decode_tensor(t, params.frac_bits)) for t in update.tensors),
            update.salt,
            sealing.update_digest(update.num_samples, ((t.name, t.shape, t.dtype, t.values) for t in update.tensors)),
        )
    if kind == "vote":
        vote = msg.vote
        if vote.loss == 0 or vote.loss > MAX_LOSS:
            raise TxError(Code.BAD_BALLOT, f"a ballot's loss must be in 1..{MAX_LOSS} (1e-4 nats), got {vote.loss}")
        if len(vote.scores) > params.num_proposers:
            raise TxError(
                Code.BAD_BALLOT, f"a ballot scores at most {params.num_proposers} updates, got {len(vote.scores)}"
            )
        if any(abs(s) > MAX_LOSS for s in vote.scores):
            raise TxError(Code.BAD_BALLOT, f"a score must be within +-{MAX_LOSS} (1e-4 nats)")
        _check_salt(vote.salt)
        return Vote(vote.round, vote.loss, tuple(vote.scores), vote.salt, sealing.ballot_digest(vote.loss, vote.scores))
    raise TxError(Code.TX_UNDECODABLE, "message is empty or of an unknown type")


def _check_salt(salt: bytes) -> None:
    if len(salt) != sealing.SALT_BYTES:
        raise TxError(
            Code.BAD_SALT,
            f"a reveal carries the {sealing.SALT_BYTES}-byte salt of its commitment, got {len(salt)} bytes",
        )
