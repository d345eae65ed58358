"""Untrusted tx bytes -> a VerifiedTx: size, decoding, ed25519 signature, chain id, and each
message's stateless check. No state is read here; a failure is a coded TxError."""

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from abci_app.address import address_from_public_key
from abci_app.codes import Code, TxError
from abci_app.messages import Message, validate_basic
from flchain.v1 import tx_pb2, types_pb2


@dataclass(frozen=True)
class VerifiedTx:
    sender: bytes  # 20-byte address of the signer
    nonce: int
    messages: tuple[Message, ...]


def verify_tx(raw: bytes, chain_id: str, params: types_pb2.Params, check_signature: bool = True) -> VerifiedTx:
    """check_signature=False only where this very tx already passed with it (a mempool recheck)."""
    if len(raw) > params.max_tx_bytes:
        raise TxError(Code.TX_TOO_LARGE, f"tx is {len(raw)} bytes, the limit is {params.max_tx_bytes}")
    try:
        tx = tx_pb2.Tx.FromString(raw)
        body = tx_pb2.TxBody.FromString(tx.body_bytes)
    except DecodeError as err:
        raise TxError(Code.TX_UNDECODABLE, f"tx is not a protobuf flchain.v1.Tx: {err}") from None
    if len(tx.public_key) != 32:
        raise TxError(Code.BAD_PUBLIC_KEY, f"public key must be 32 bytes (ed25519), got {len(tx.public_key)}")
    if check_signature:
        try:
            Ed25519PublicKey.from_public_bytes(tx.public_key).verify(tx.signature, tx.body_bytes)
        except (InvalidSignature, ValueError):
            raise TxError(Code.BAD_SIGNATURE, "signature does not verify against the public key") from None
    if body.chain_id != chain_id:
        raise TxError(Code.WRONG_CHAIN_ID, f"tx is for chain {body.chain_id!r}, this is {chain_id!r}")
    if not body.messages:
        raise TxError(Code.NO_MESSAGES, "tx carries no messages")
    messages = []
    for i, msg in enumerate(body.messages):
        try:
            messages.append(validate_basic(msg, params))
        except TxError as err:
            raise TxError(err.code, f"message {i}: {err.message}") from None
    return VerifiedTx(address_from_public_key(tx.public_key), body.nonce, tuple(messages))
