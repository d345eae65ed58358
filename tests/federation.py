"""A scripted federation for integration tests: participants that follow the round game over RPC.

Proposers submit small updates, or large poisoned ones when told to; voters judge every update
for real by the size of the step it would take (a poisoned one moves far) and report it as
leave-one-out evidence: a far step is harmful, a small one helps.
"""

import time

import numpy as np

from abci_app import tensors
from abci_app.codes import Code
from client import tx as txb
from client.keys import Key
from client.rpc import CometRPC
from flchain.v1 import query_pb2, types_pb2

POISON_SCALE = 1.5  # within the norm bound, so only the voters can stop it
HONEST_SCALE = 0.001
LOSS = 10_000  # every scripted voter's held-out loss, in 1e-4 nats


class ScriptedFederation:
    def __init__(self, rpc: CometRPC, keys: list[Key], chain_id: str):
        self.rpc, self.chain_id = rpc, chain_id
        self.keys = {k.address: k for k in keys}
        self.nonces: dict[bytes, int] = {}
        self.poison_rounds: set[int] = set()
        self.done: set[tuple[int, bytes]] = set()

    def query(self, path: str, cls):
        result = self.rpc.abci_query(path)
        assert result.code == 0, f"query {path}: {result.log}"
        return cls.FromString(result.value)

    def send(self, key: Key, *msgs, late_ok: bool = False) -> bool:
        """Broadcast; True once in the mempool. late_ok: a round message that arrives just as its
        phase closed (the block committed between our round query and CheckTx) returns False."""
        if key.address not in self.nonces:
            self.nonces[key.address] = self.query(f"/account/{key.bech32}", types_pb2.Account).nonce
        result = self.rpc.broadcast_tx_sync(txb.sign_tx(key, self.chain_id, self.nonces[key.address], msgs))
        if late_ok and result.code in (Code.WRONG_PHASE, Code.WRONG_ROUND):
            return False
        assert result.code == 0, f"tx from {key.bech32} rejected: {result.log}"
        self.nonces[key.address] += 1
        return True

    def bond_all(self, amount: int) -> None:
        for key in self.keys.values():
            self.send(key, txb.bond(amount))

    def step(self) -> types_pb2.Round:
        """Act once on the current round: each participant does its duty at most once."""
        rnd = self.query("/round", types_pb2.Round)
        if rnd.phase == types_pb2.PHASE_PROPOSE:
            model = self.query("/model", types_pb2.GlobalModel)
            scale = POISON_SCALE if rnd.id in self.poison_rounds else HONEST_SCALE
            update = [(t.name, np.full(tuple(t.shape), scale, np.float32)) for t in model.tensors]
            for address in rnd.proposers:
                if (rnd.id, address) not in self.done and address in self.keys:
                    if self.send(self.keys[address], txb.submit_update(rnd.id, update, 50), late_ok=True):
                        self.done.add((rnd.id, address))
        elif rnd.phase == types_pb2.PHASE_VOTE:
            answer = self.rpc.abci_query("/updates")
            if answer.code:  # the round was tallied between the two queries: act on the next one
                return rnd
            updates = query_pb2.UpdateList.FromString(answer.value).updates
            steps = [
                max(float(np.abs(tensors.to_float(tensors.read(t), 16)).max()) for t in u.tensors) for u in updates
            ]
            scores = [LOSS // 10 if step < 1.0 else -LOSS // 2 for step in steps]  # +10% helps, -50% harms
            for address in rnd.voters:
                if (rnd.id, address) not in self.done and address in self.keys:
                    if self.send(self.keys[address], txb.vote(rnd.id, LOSS, scores), late_ok=True):
                        self.done.add((rnd.id, address))
        return rnd

    def run_until(self, predicate, timeout: float) -> types_pb2.Round:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rnd = self.step()
            if predicate(rnd):
                return rnd
            time.sleep(0.2)
        raise AssertionError(f"federation did not reach the expected state in {timeout}s (round {rnd})")
