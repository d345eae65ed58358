"""An in-process chain: the real StateMachine making blocks and commits, without CometBFT or sockets.

The simulator, the unit tests and the benchmarks all drive a chain through this one class. Block
hashes (the draw's seed) are derived from a label and the height and block times from the height,
so a run is reproducible, and every block is kept so that it can be replayed through the ABCI
application.
"""

import hashlib
from collections import defaultdict
from collections.abc import Callable

from abci_app.machine import BlockOutcome, StateMachine
from abci_app.queries import QueryAnswer, answer
from abci_app.state import State
from abci_app.store import MemoryStore
from client.keys import Key
from client.tx import sign_tx
from flchain.v1 import genesis_pb2, tx_pb2, types_pb2

GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class InProcessChain:
    def __init__(
        self,
        genesis: genesis_pb2.GenesisState,
        chain_id: str,
        *,
        machine: StateMachine | None = None,
        block_label: bytes = b"block",
        block_interval_ms: int = 1_000,
    ):
        self.genesis, self.chain_id, self.block_label = genesis, chain_id, block_label
        self.block_interval_ms = block_interval_ms
        self.machine = machine or StateMachine(MemoryStore())
        self.genesis_app_hash = self.machine.init_chain(genesis, chain_id)
        self.height = 0
        self.blocks: list[tuple[int, bytes, list[bytes]]] = []  # (height, block hash, txs): enough to replay
        self.last: BlockOutcome | None = None
        self.nonces: defaultdict[bytes, int] = defaultdict(int)  # next nonce per address, as a client tracks it

    def sign(self, key: Key, *messages: tx_pb2.Msg, nonce: int | None = None) -> bytes:
        """A signed tx with the key's next nonce, tracked here as a client would (or the nonce given)."""
        if nonce is None:
            nonce = self.nonces[key.address]
            self.nonces[key.address] = nonce + 1
        return sign_tx(key, self.chain_id, nonce, messages)

    def block_hash(self, height: int) -> bytes:
        return hashlib.sha256(self.block_label + b"%d" % height).digest()

    def block_time_ms(self, height: int) -> int:
        """Block time: a fixed interval after genesis, so a run is reproducible."""
        return GENESIS_TIME_MS + height * self.block_interval_ms

    def block(self, *txs: bytes) -> BlockOutcome:
        """Finalize and commit the next block with these txs."""
        self.height += 1
        block_hash = self.block_hash(self.height)
        self.blocks.append((self.height, block_hash, list(txs)))
        self.last = self.machine.finalize_block(list(txs), self.height, block_hash, self.block_time_ms(self.height))
        self.machine.commit()
        # a tx refused in its block spends no nonce: like a client, read the next one back from the chain
        state = self.state()
        for address in self.nonces:
            account = state.account(address)
            self.nonces[address] = account.nonce if account is not None else 0
        return self.last

    def blocks_until(self, predicate: Callable[[State], bool], limit: int = 50) -> None:
        """Empty blocks until predicate(committed state) holds; AssertionError after `limit` blocks."""
        for _ in range(limit):
            if self.height > 0 and predicate(self.state()):  # nothing is committed before block 1
                return
            self.block()
        raise AssertionError(f"condition not reached within {limit} blocks")

    def state(self) -> State:
        return self.machine.committed_state()

    def round(self) -> types_pb2.Round:
        return self.state().round()

    def query(self, path: str) -> QueryAnswer:
        return answer(self.state(), path)
