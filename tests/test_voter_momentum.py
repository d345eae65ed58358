"""A voter judges a round's updates from where the round's step starts: the global model plus the
server momentum the chain adds whatever the updates are (here a participant with an inline model)."""

import hashlib

import numpy as np

from abci_app import genesis, tensors
from client.keys import Key
from flchain.v1 import types_pb2
from participant.runtime import Participant

FRAC_BITS = genesis.default_params().frac_bits
MODEL = np.array([4.0, -2.0, 1.0], dtype=np.float32)
STEP = np.array([1.0, 0.5, -0.25], dtype=np.float32)  # the model's last move
UPDATE = np.array([0.125, 0.125, 0.125], dtype=np.float32)


def fixed(values: np.ndarray) -> types_pb2.Tensor:
    return tensors.encode("w", np.round(values.astype(np.float64) * 2**FRAC_BITS).astype(np.int64))


class OneUpdateChain:
    """What the voter reads from its gateway: a model with its last move, one update under vote."""

    def __init__(self, voter: bytes, proposer: bytes, momentum_bps: int):
        self.params_ = genesis.default_params()
        self.params_.server_momentum_bps = momentum_bps
        self.rnd = types_pb2.Round(id=2, phase=types_pb2.PHASE_VOTE, voters=[voter], submitted=[proposer])
        self.update = types_pb2.Update(round=2, proposer=proposer, num_samples=10, weight=10, tensors=[fixed(UPDATE)])

    def params(self) -> types_pb2.Params:
        return self.params_

    def model(self) -> types_pb2.GlobalModel:
        return types_pb2.GlobalModel(version=1, round=1, tensors=[fixed(MODEL)], step=[fixed(STEP)])

    def updates(self) -> list[types_pb2.Update]:
        return [self.update]


class MeasuringLearner:
    """Records each model the voter evaluates; the loss is the distance to a target."""

    def __init__(self) -> None:
        self.measured: list[np.ndarray] = []

    def loss(self, params, part=None) -> float:
        ((_, values),) = params
        self.measured.append(values.copy())
        return float(np.abs(values).sum())


def evaluated(momentum_bps: int) -> list[np.ndarray]:
    voter = Key.from_seed("v", hashlib.sha256(b"v").digest())
    proposer = Key.from_seed("p", hashlib.sha256(b"p").digest()).address
    chain = OneUpdateChain(voter.address, proposer, momentum_bps)
    learner = MeasuringLearner()
    Participant(voter, chain, learner)._evidence(chain.rnd)
    return learner.measured


def test_a_voter_judges_from_the_model_plus_the_momentum():
    without_it, with_all = evaluated(5_000)  # a lone update: leaving it out is the starting model
    start = MODEL + 0.5 * STEP
    assert np.allclose(without_it, start, atol=2**-FRAC_BITS)
    assert np.allclose(with_all, start + UPDATE, atol=2**-FRAC_BITS)


def test_without_momentum_a_voter_judges_from_the_model():
    without_it, with_all = evaluated(0)
    assert np.allclose(without_it, MODEL, atol=2**-FRAC_BITS)
    assert np.allclose(with_all, MODEL + UPDATE, atol=2**-FRAC_BITS)
