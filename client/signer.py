"""A key that sends txs through a gateway, tracking its account's nonce as Cosmos clients do."""

import threading
from collections.abc import Sequence

from abci_app.codes import CODESPACE, Code
from client.gateway_client import ChainError, GatewayClient, NotFound, TxRejected
from client.keys import Key
from client.tx import sign_tx
from flchain.v1 import tx_pb2


class Signer:
    def __init__(self, client: GatewayClient, key: Key):
        self.client, self.key = client, key
        self._nonce: int | None = None  # next nonce to use; read from the chain when unknown
        self._lock = threading.Lock()

    def send(self, messages: Sequence[tx_pb2.Msg], memo: str = "") -> str:
        """Sign and broadcast; the tx hash once CheckTx accepted it, TxRejected otherwise.

        A BAD_NONCE answer means our count and the chain's differ (an earlier tx was dropped
        from the mempool, or another client used this key): re-read the nonce and, if it moved,
        sign these messages once more. Messages of a tx that was accepted are never signed again."""
        with self._lock:
            for _ in range(2):
                if self._nonce is None:
                    self._nonce = self._chain_nonce()
                used = self._nonce
                result = self.client.broadcast(sign_tx(self.key, self.client.chain_id, used, messages, memo))
                if result.code == Code.OK:
                    self._nonce = used + 1
                    return result.hash
                if result.code != Code.BAD_NONCE or result.codespace != CODESPACE:
                    break
                self._nonce = self._chain_nonce()
                if self._nonce == used:
                    break  # the chain agrees with our count: retrying would change nothing
            raise TxRejected(result.code, result.codespace, result.log)

    def _chain_nonce(self) -> int:
        try:
            return self.client.account(self.key.bech32).nonce
        except NotFound:
            raise ChainError(
                f"{self.key.bech32} has no account on chain {self.client.chain_id} (accounts are funded at genesis)"
            ) from None
