"""Building and signing flchain txs: the messages of proto/flchain/v1/tx.proto, signed with ed25519."""

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abci_app import sealing
from abci_app.messages import MAX_LOSS
from abci_app.units import BPS
from abci_app.wire import encode_float
from client.keys import Key
from flchain.v1 import tx_pb2, types_pb2


def sign_tx(key: Key, chain_id: str, nonce: int, messages: Sequence[tx_pb2.Msg], memo: str = "") -> bytes:
    """Serialize the body once and sign exactly those bytes (ed25519)."""
    body = tx_pb2.TxBody(messages=list(messages), chain_id=chain_id, nonce=nonce, memo=memo)
    body_bytes = body.SerializeToString(deterministic=True)
    return tx_pb2.Tx(
        body_bytes=body_bytes, public_key=key.public_key, signature=key.sign(body_bytes)
    ).SerializeToString()


def bond(amount: int) -> tx_pb2.Msg:
    return tx_pb2.Msg(bond=tx_pb2.MsgBond(amount=amount))


def unbond(amount: int) -> tx_pb2.Msg:
    return tx_pb2.Msg(unbond=tx_pb2.MsgUnbond(amount=amount))


@dataclass(frozen=True)
class Sealed:
    """A sealed update or ballot: `commit` goes out in the commit phase, `reveal` in the next one."""

    commit: tx_pb2.Msg
    reveal: tx_pb2.Msg


def derive_salt(key: Key, chain_id: str, round_id: int, kind: bytes) -> bytes:
    """A salt only the key's holder can compute, the same after a restart: sha256 of its
    (deterministic) ed25519 signature over the round and kind."""
    message = b"flchain/salt/v1/" + chain_id.encode() + struct.pack(">Q", round_id) + kind
    return hashlib.sha256(key.sign(message)).digest()


def submit_update(round_id: int, update: Sequence[tuple[str, np.ndarray]], num_samples: int, salt: bytes) -> tx_pb2.Msg:
    """An update as float tensors (new weights minus the round's global model), named like the model:
    the reveal of a commitment made with the same salt."""
    return tx_pb2.Msg(
        submit_update=tx_pb2.MsgSubmitUpdate(
            round=round_id,
            num_samples=num_samples,
            tensors=[encode_float(name, values) for name, values in update],
            salt=salt,
        )
    )


def submit_reference(
    round_id: int, ref: types_pb2.BlobRef, fingerprint: Sequence[int], num_samples: int, salt: bytes
) -> tx_pb2.Msg:
    """An update by reference: its file is already in the object store (client.object_store); the
    fingerprint is the file's (abci_app/copies.py), for the copy rule."""
    submit = tx_pb2.MsgSubmitUpdate(
        round=round_id, num_samples=num_samples, ref=ref, salt=salt, fingerprint=fingerprint
    )
    return tx_pb2.Msg(submit_update=submit)


def report_aggregate(round_id: int, digest: bytes, size: int, norms: Sequence[int]) -> tx_pb2.Msg:
    """An aggregator's report of the new global model it computed and stored, and of the norms of
    the included updates it read (one each, in the round's order)."""
    return tx_pb2.Msg(report_aggregate=tx_pb2.MsgReportAggregate(round=round_id, digest=digest, size=size, norms=norms))


def vote(
    round_id: int, loss: int, scores: Sequence[int], salt: bytes, alignments: Sequence[int] = (), *, start_loss: int
) -> tx_pb2.Msg:
    """A voter's evidence: held-out loss with every update, its loss where the round's step starts
    (no update), and per update (in Round.submitted order) the loss without it minus `loss`; all in
    1e-4 nats (see evidence_units and loss_units). Alignments, when given, are per update too (see
    alignment_units). The reveal of a commitment made with the same salt."""
    msg = tx_pb2.MsgVote(
        round=round_id, loss=loss, start_loss=start_loss, scores=list(scores), salt=salt, alignments=list(alignments)
    )
    return tx_pb2.Msg(vote=msg)


def commit_update(round_id: int, commitment: bytes) -> tx_pb2.Msg:
    return tx_pb2.Msg(commit_update=tx_pb2.MsgCommit(round=round_id, commitment=commitment))


def commit_ballot(round_id: int, commitment: bytes) -> tx_pb2.Msg:
    return tx_pb2.Msg(commit_ballot=tx_pb2.MsgCommit(round=round_id, commitment=commitment))


def sealed_update(
    sender: bytes, round_id: int, update: Sequence[tuple[str, np.ndarray]], num_samples: int, salt: bytes
) -> Sealed:
    reveal = submit_update(round_id, update, num_samples, salt)
    sent = reveal.submit_update
    digest = sealing.update_digest(num_samples, ((t.name, t.shape, t.dtype, t.values) for t in sent.tensors))
    return Sealed(commit_update(round_id, sealing.commitment(sealing.UPDATE, round_id, sender, salt, digest)), reveal)


def sealed_reference(
    sender: bytes, round_id: int, ref: types_pb2.BlobRef, fingerprint: Sequence[int], num_samples: int, salt: bytes
) -> Sealed:
    """A sealed update by reference: the commitment binds the file's digest, size and manifest (and
    so its fingerprint, which the voters check against the file)."""
    manifest = [(t.name, t.shape, t.dtype) for t in ref.manifest]
    digest = sealing.reference_digest(num_samples, ref.digest, ref.size, manifest)
    return Sealed(
        commit_update(round_id, sealing.commitment(sealing.UPDATE, round_id, sender, salt, digest)),
        submit_reference(round_id, ref, fingerprint, num_samples, salt),
    )


def sealed_ballot(
    sender: bytes,
    round_id: int,
    loss: int,
    scores: Sequence[int],
    salt: bytes,
    alignments: Sequence[int] = (),
    *,
    start_loss: int,
) -> Sealed:
    digest = sealing.ballot_digest(loss, start_loss, scores, alignments)
    return Sealed(
        commit_ballot(round_id, sealing.commitment(sealing.BALLOT, round_id, sender, salt, digest)),
        vote(round_id, loss, scores, salt, alignments, start_loss=start_loss),
    )


def evidence_units(nats: float) -> int:
    """A loss or loss difference in nats -> the integer 1e-4 nats a ballot carries."""
    return int(round(nats * 10_000))


def alignment_units(cosine: float) -> int:
    """A cosine -> the basis points a ballot carries, within what the chain accepts."""
    return max(-BPS, min(BPS, int(round(cosine * BPS))))


def loss_units(nats: float) -> int:
    """A ballot's own loss in 1e-4 nats, within what the chain accepts: a voter whose held-out data
    the model already fits (a loss under 0.5e-4 nats) reports the smallest loss instead of a ballot
    the chain would refuse (and a liveness slash for an honest vote)."""
    return min(MAX_LOSS, max(1, evidence_units(nats)))
