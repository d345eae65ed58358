"""Stateless tx checks: size, decoding, ed25519 signature and chain id. No state is read here."""
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from abci_app.address import address_from_public_key
from abci_app.codes import Code, TxError
from flchain.v1 import tx_pb2


@dataclass(frozen=True)
class VerifiedTx:
    sender: bytes  # 20-byte address of the signer
    body: tx_pb2.TxBody


def verify_tx(raw: bytes, chain_id: str, max_tx_bytes: int) -> VerifiedTx:
    if len(raw) > max_tx_bytes:
        raise TxError(Code.TX_TOO_LARGE, f"tx is {len(raw)} bytes, the limit is {max_tx_bytes}")
    try:
        tx = tx_pb2.Tx.FromString(raw)
        body = tx_pb2.TxBody.FromString(tx.body_bytes)
    except DecodeError as err:
        raise TxError(Code.TX_UNDECODABLE, f"tx is not a protobuf flchain.v1.Tx: {err}") from None
    if len(tx.public_key) != 32:
        raise TxError(Code.BAD_PUBLIC_KEY, f"public key must be 32 bytes (ed25519), got {len(tx.public_key)}")
    try:
        Ed25519PublicKey.from_public_bytes(tx.public_key).verify(tx.signature, tx.body_bytes)
    except (InvalidSignature, ValueError):
        raise TxError(Code.BAD_SIGNATURE, "signature does not verify against the public key") from None
    if body.chain_id != chain_id:
        raise TxError(Code.WRONG_CHAIN_ID, f"tx is for chain {body.chain_id!r}, this is {chain_id!r}")
    if not body.messages:
        raise TxError(Code.NO_MESSAGES, "tx carries no messages")
    for i, msg in enumerate(body.messages):
        if msg.WhichOneof("sum") is None:
            raise TxError(Code.TX_UNDECODABLE, f"message {i} is empty or of an unknown type")
    return VerifiedTx(sender=address_from_public_key(tx.public_key), body=body)
