"""The in-process chain of the unit tests: deterministic keys, small params and a tiny model."""

import hashlib

import numpy as np

from abci_app import genesis
from abci_app.machine import StateMachine
from client.in_process import InProcessChain
from client.keys import Key
from flchain.v1 import types_pb2

CHAIN_ID = "flchain-test"
MODEL_SHAPES = [("fc.weight", (4, 3)), ("fc.bias", (4,))]


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
            unbonding_blocks=3,
            proposer_reward_bps=500,
            proposer_slash_bps=3_000,
        )
    )
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
    ):
        self.keys = [
            Key.from_seed(f"p{i}", hashlib.sha256(b"key%d" % i).digest()) for i in range(participants + extra_accounts)
        ]
        self.params = params or make_params()
        super().__init__(
            genesis.build(
                {k.address: balance for k in self.keys},
                {k.address: stake for k in self.keys[:participants]},
                initial_model(),
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
