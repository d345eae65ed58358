"""A scripted federation for integration tests: participants that follow the round game over RPC.

Proposers submit small updates, or large poisoned ones when told to; voters judge every update
for real by the size of the step it would take (a poisoned one moves far) and report it as
leave-one-out evidence: a far step is harmful, a small one helps. Both are sealed: committed in
PROPOSE (VOTE) and revealed in the next phase; the content is recomputed for the reveal (it is
deterministic) and the salt derived from the key.
"""

import time

import numpy as np

from abci_app import tensors
from abci_app.codes import Code
from client import tx as txb
from client.keys import Key
from client.rpc import CometRPC, RPCError
from flchain.v1 import query_pb2, types_pb2

POISON_SCALE = 1.5  # within the norm bound, so only the voters can stop it
HONEST_SCALE = 0.001
LOSS = 10_000  # every scripted voter's held-out loss, in 1e-4 nats


def scripted_update(model: types_pb2.GlobalModel, round_id: int, proposer: bytes, scale: float):
    """A step of about `scale` per value in a direction of its own: each proposer's update of each
    round points elsewhere, as trained ones do (the copy rule condemns one that repeats another's)."""
    rng = np.random.default_rng([round_id, *proposer[:8]])
    return [(t.name, (scale * rng.normal(0, 1, tuple(t.shape))).astype(np.float32)) for t in model.tensors]


class ScriptedFederation:
    def __init__(self, rpc: CometRPC, keys: list[Key], chain_id: str):
        self.rpc, self.chain_id = rpc, chain_id
        self.keys = {k.address: k for k in keys}
        self.nonces: dict[bytes, int] = {}
        self.poison_rounds: set[int] = set()
        self.done: set[tuple[int, int, bytes]] = set()  # (round, phase, address) duties done
        # a round whose next round's first proposer copies an update of it (another proposer's),
        # and the round where that copy was sent
        self.copied_round: int | None = None
        self.copying_round: int | None = None

    def query(self, path: str, cls):
        result = self.rpc.abci_query(path)
        assert result.code == 0, f"query {path}: {result.log}"
        return cls.FromString(result.value)

    def send(self, key: Key, *msgs, late_ok: bool = False) -> bool:
        """Broadcast; True once in the mempool. late_ok: a round message that arrives just as its
        phase closed (the block committed between our round query and CheckTx) returns False."""
        if key.address not in self.nonces:
            self.nonces[key.address] = self.chain_nonce(key)
        try:
            result = self.rpc.broadcast_tx_sync(txb.sign_tx(key, self.chain_id, self.nonces[key.address], msgs))
        except RPCError as err:
            if "tx already exists in cache" not in err.message + err.data:
                raise
            # the very same signed tx is already pending: another ScriptedFederation of this
            # network (an earlier test's) sent it in this round
            self.nonces[key.address] += 1
            return True
        if result.code == Code.BAD_NONCE and (on_chain := self.chain_nonce(key)) != self.nonces[key.address]:
            # our last tx reached the mempool, then its phase closed and the recheck dropped it
            # unspent: count from the chain again, as client.signer does
            self.nonces[key.address] = on_chain
            result = self.rpc.broadcast_tx_sync(txb.sign_tx(key, self.chain_id, on_chain, msgs))
        if late_ok and result.code in (Code.WRONG_PHASE, Code.WRONG_ROUND):
            return False
        assert result.code == 0, f"tx from {key.bech32} rejected: {result.log}"
        self.nonces[key.address] += 1
        return True

    def chain_nonce(self, key: Key) -> int:
        return self.query(f"/account/{key.bech32}", types_pb2.Account).nonce

    def bond_all(self, amount: int) -> None:
        for key in self.keys.values():
            self.send(key, txb.bond(amount))

    def step(self) -> types_pb2.Round:
        """Act once on the current round: each participant does its duty at most once per phase."""
        rnd = self.query("/round", types_pb2.Round)
        P = types_pb2
        if rnd.phase in (P.PHASE_PROPOSE, P.PHASE_REVEAL_UPDATES):
            model = self.query("/model", types_pb2.GlobalModel)
            scale = POISON_SCALE if rnd.id in self.poison_rounds else HONEST_SCALE
            committed = {c.sender for c in rnd.update_commitments}
            for address in rnd.proposers:
                if rnd.phase == P.PHASE_REVEAL_UPDATES and address not in committed:
                    continue
                key = self.keys.get(address)
                if key and (rnd.id, rnd.phase, address) not in self.done:
                    salt = txb.derive_salt(key, self.chain_id, rnd.id, b"update")
                    update = scripted_update(model, *self.source(rnd, address), scale)
                    sealed = txb.sealed_update(address, rnd.id, update, 50, salt)
                    msg = sealed.commit if rnd.phase == P.PHASE_PROPOSE else sealed.reveal
                    if self.send(key, msg, late_ok=True):
                        self.done.add((rnd.id, rnd.phase, address))
        elif rnd.phase in (P.PHASE_VOTE, P.PHASE_REVEAL_BALLOTS):
            answer = self.rpc.abci_query("/updates")
            if answer.code:  # the round was tallied between the two queries: act on the next one
                return rnd
            updates = query_pb2.UpdateList.FromString(answer.value).updates
            steps = [
                max(float(np.abs(tensors.to_float(tensors.read(t), 16)).max()) for t in u.tensors) for u in updates
            ]
            scores = [LOSS // 10 if step < 1.0 else -LOSS // 2 for step in steps]  # +10% helps, -50% harms
            committed = {c.sender for c in rnd.ballot_commitments}
            for address in rnd.voters:
                if rnd.phase == P.PHASE_REVEAL_BALLOTS and address not in committed:
                    continue
                key = self.keys.get(address)
                if key and (rnd.id, rnd.phase, address) not in self.done:
                    salt = txb.derive_salt(key, self.chain_id, rnd.id, b"ballot")
                    sealed = txb.sealed_ballot(address, rnd.id, LOSS, scores, salt, start_loss=LOSS + LOSS // 10)
                    msg = sealed.commit if rnd.phase == P.PHASE_VOTE else sealed.reveal
                    if self.send(key, msg, late_ok=True):
                        self.done.add((rnd.id, rnd.phase, address))
        return rnd

    def source(self, rnd: types_pb2.Round, address: bytes) -> tuple[int, bytes]:
        """Whose update of which round this proposer sends: its own, or, as the copier, another's."""
        if self.copied_round is None or rnd.id != self.copied_round + 1 or address != rnd.proposers[0]:
            return rnd.id, address
        earlier = self.query(f"/round/{self.copied_round}", types_pb2.Round)
        others = [a for a in earlier.submitted if a != address]
        if not others:  # nothing of another proposer's to copy there: copy from this round instead
            self.copied_round = rnd.id
            return rnd.id, address
        self.copying_round = rnd.id
        return self.copied_round, others[0]

    def run_until(self, predicate, timeout: float) -> types_pb2.Round:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rnd = self.step()
            if predicate(rnd):
                return rnd
            time.sleep(0.2)
        raise AssertionError(f"federation did not reach the expected state in {timeout}s (round {rnd})")
