"""Building and signing flchain txs: the messages of proto/flchain/v1/tx.proto, signed with ed25519."""

from collections.abc import Sequence

import numpy as np

from abci_app.wire import encode_float
from client.keys import Key
from flchain.v1 import tx_pb2


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


def submit_update(round_id: int, update: Sequence[tuple[str, np.ndarray]], num_samples: int) -> tx_pb2.Msg:
    """An update as float tensors (new weights minus the round's global model), named like the model."""
    return tx_pb2.Msg(
        submit_update=tx_pb2.MsgSubmitUpdate(
            round=round_id, num_samples=num_samples, tensors=[encode_float(name, values) for name, values in update]
        )
    )


def vote(round_id: int, loss: int, scores: Sequence[int]) -> tx_pb2.Msg:
    """A voter's evidence: held-out loss with every update, and per update (in Round.submitted order)
    the loss without it minus that loss; both in 1e-4 nats (see evidence_units)."""
    return tx_pb2.Msg(vote=tx_pb2.MsgVote(round=round_id, loss=loss, scores=list(scores)))


def evidence_units(nats: float) -> int:
    """A loss or loss difference in nats -> the integer 1e-4 nats a ballot carries."""
    return int(round(nats * 10_000))
