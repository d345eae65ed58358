"""The in-process chain of the unit tests: deterministic keys, small params and a tiny model."""

import hashlib
import struct

import numpy as np

from abci_app import genesis
from abci_app.codes import Code
from abci_app.machine import BlockOutcome, StateMachine
from client import tx as txb
from client.in_process import InProcessChain
from client.keys import Key
from flchain.v1 import types_pb2

CHAIN_ID = "flchain-test"
MODEL_SHAPES = [("fc.weight", (4, 3)), ("fc.bias", (4,))]


class KeptFiles:
    """An object store's put and get, in memory."""

    def __init__(self) -> None:
        self.files: dict[bytes, bytes] = {}

    def put(self, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        self.files[digest] = data
        return digest

    def get(self, digest: bytes, size: int | None = None) -> bytes:
        return self.files[digest]


def initial_model(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(name, rng.normal(0, 0.5, shape).astype(np.float32)) for name, shape in MODEL_SHAPES]


def make_params(**overrides) -> types_pb2.Params:
    params = genesis.default_params()
    params.MergeFrom(
        types_pb2.Params(
            min_stake=1_000,
            num_proposers=2,
            num_voters=3,
            min_participants=3,
            propose_timeout_ms=2_000,  # two blocks of the in-process chain (1 s apart)
            vote_timeout_ms=2_000,
            reveal_timeout_ms=2_000,
            aggregate_timeout_ms=2_000,
            unbonding_blocks=3,
            proposer_reward_bps=500,
            proposer_slash_bps=3_000,
        )
    )
    # the tests' updates are constant tensors, all pointing the same way: the copy rule would take
    # them for copies of one another, so it is off except where tests turn it on (test_copies.py)
    params.copy_cosine_bps = 0
    for name, value in overrides.items():
        setattr(params, name, value)
    return params


class Chain(InProcessChain):
    """Keys are deterministic (seeded by index) so failures reproduce."""

    def __init__(
        self,
        participants: int = 6,
        extra_accounts: int = 1,
        params: types_pb2.Params | None = None,
        balance: int = 10_000,
        stake: int = 2_000,
        machine: StateMachine | None = None,
        model_ref: types_pb2.BlobRef | None = None,
    ):
        self.keys = [
            Key.from_seed(f"p{i}", hashlib.sha256(b"key%d" % i).digest()) for i in range(participants + extra_accounts)
        ]
        self.params = params or make_params()
        super().__init__(
            genesis.build(
                {k.address: balance for k in self.keys},
                {k.address: stake for k in self.keys[:participants]},
                model_ref or initial_model(),
                self.params,
            ),
            CHAIN_ID,
            machine=machine,
        )

    def key(self, address: bytes) -> Key:
        return next(k for k in self.keys if k.address == address)

    def tx(self, key: Key, *messages, nonce: int | None = None) -> bytes:
        return self.sign(key, *messages, nonce=nonce)

    def events(self, kind: str) -> list[dict[str, str]]:
        return [dict(e.attributes) for e in self.last.events if e.type == kind]

    def honest_update(self, scale: float = 0.01) -> list[tuple[str, np.ndarray]]:
        return [(name, np.full(shape, scale, dtype=np.float32)) for name, shape in MODEL_SHAPES]

    def start_round(self) -> types_pb2.Round:
        """Run blocks until a round is in PROPOSE."""
        self.blocks_until(lambda s: s.round().phase == types_pb2.PHASE_PROPOSE)
        return self.round()

    # --- sealed updates and ballots: commit in one block, then reveal once the phase turns ---------

    def salt(self, address: bytes, round_id: int, kind: bytes = b"update") -> bytes:
        return hashlib.sha256(b"test-salt" + address + struct.pack(">Q", round_id) + kind).digest()

    def sealed_update(self, rnd, address: bytes, update, samples: int) -> txb.Sealed:
        return txb.sealed_update(address, rnd.id, update, samples, self.salt(address, rnd.id))

    def sealed_ballot(self, rnd, address: bytes, loss: int, scores, alignments=(), start_loss=None) -> txb.Sealed:
        """A ballot; its start loss is its loss unless given (a round that neither helps nor harms)."""
        salt = self.salt(address, rnd.id, b"ballot")
        start = loss if start_loss is None else start_loss
        return txb.sealed_ballot(address, rnd.id, loss, scores, salt, alignments, start_loss=start)

    def commit(self, sealed: dict[bytes, txb.Sealed], until: int) -> None:
        """Every commitment in one block (all accepted), then blocks until the round reaches `until`."""
        out = self.block(*[self.tx(self.key(a), s.commit) for a, s in sealed.items()])
        assert [r.code for r in out.tx_results] == [Code.OK] * len(sealed), [r.log for r in out.tx_results]
        self.blocks_until(lambda s: s.round().phase == until)

    def reveal(self, sealed: dict[bytes, txb.Sealed]) -> BlockOutcome:
        return self.block(*[self.tx(self.key(a), s.reveal) for a, s in sealed.items()])

    def propose(self, rnd, updates: dict[bytes, tuple[list, int]]) -> BlockOutcome:
        """Commit then reveal each proposer's (update, num_samples); the reveal block's outcome."""
        sealed = {a: self.sealed_update(rnd, a, u, n) for a, (u, n) in updates.items()}
        self.commit(sealed, types_pb2.PHASE_REVEAL_UPDATES)
        return self.reveal(sealed)

    def cast(self, rnd, ballots: dict[bytes, tuple[int, list[int]]], start_loss: int | None = None) -> BlockOutcome:
        """Commit then reveal each voter's (loss, scores), each from the start loss given (its loss
        if none); the reveal block's outcome."""
        sealed = {a: self.sealed_ballot(rnd, a, loss, scores, (), start_loss) for a, (loss, scores) in ballots.items()}
        self.commit(sealed, types_pb2.PHASE_REVEAL_BALLOTS)
        return self.reveal(sealed)

    def duty_txs(self, samples: int = 10, loss: int = 10_000, score: int = 500) -> list[bytes]:
        """The txs every drawn party still owes in the current phase: an honest update, committed
        then revealed, and a ballot finding every update helpful, likewise."""
        rnd = self.round()
        P = types_pb2
        if rnd.phase in (P.PHASE_PROPOSE, P.PHASE_REVEAL_UPDATES):
            committed = [c.sender for c in rnd.update_commitments]
            sealed = {a: self.sealed_update(rnd, a, self.honest_update(), samples) for a in rnd.proposers}
            if rnd.phase == P.PHASE_PROPOSE:
                return [self.tx(self.key(a), s.commit) for a, s in sealed.items() if a not in committed]
            return [self.tx(self.key(a), sealed[a].reveal) for a in committed if a not in rnd.submitted]
        if rnd.phase in (P.PHASE_VOTE, P.PHASE_REVEAL_BALLOTS):
            committed = [c.sender for c in rnd.ballot_commitments]
            scores = [score] * len(rnd.submitted)
            ballots = {a: self.sealed_ballot(rnd, a, loss, scores) for a in rnd.voters}
            if rnd.phase == P.PHASE_VOTE:
                return [self.tx(self.key(a), s.commit) for a, s in ballots.items() if a not in committed]
            voted = {b.voter for b in rnd.ballots}
            return [self.tx(self.key(a), ballots[a].reveal) for a in committed if a not in voted]
        return []
