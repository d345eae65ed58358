"""A participant on a chain of models by reference whose object store does not hold the global
model (a store that lost it): it says so and goes on following rounds, it does not stop."""

import hashlib
import logging

from abci_app import genesis
from client.keys import Key
from client.object_store import BlobMissing
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import types_pb2
from participant.runtime import Participant

LOST = hashlib.sha256(b"a model the store lost").digest()


class StoreWithoutTheModel:
    def get(self, digest: bytes, size: int | None = None) -> bytes:
        raise BlobMissing(f"no object sha256/{digest.hex()}")


class ChainAt:
    """What the participant reads from its gateway: one round, a global model by reference."""

    chain_id = "flchain-test"

    def __init__(self, rnd: types_pb2.Round):
        self.rnd = rnd

    def round(self) -> types_pb2.Round:
        return self.rnd

    def model(self) -> types_pb2.GlobalModel:
        return types_pb2.GlobalModel(version=3, ref=types_pb2.BlobRef(digest=LOST, size=1_000))

    def params(self) -> types_pb2.Params:
        return genesis.default_params()


class NoLearner:
    def train(self, params, round_id):
        raise AssertionError("nothing to train from without the global model")


def test_a_lost_global_model_is_logged_and_the_participant_goes_on(caplog):
    key = Key.from_seed("p", hashlib.sha256(b"p").digest())
    # round 4's event twice: a step that failed is not taken as done, it is tried again
    rounds = [types_pb2.Round(id=i, phase=types_pb2.PHASE_PROPOSE, proposers=[key.address]) for i in (4, 4, 5)]
    chain = ChainAt(rounds[0])
    participant = Participant(key, chain, NoLearner(), store=StoreWithoutTheModel())
    with caplog.at_level(logging.ERROR, logger="flchain.participant"):
        for rnd in rounds:
            chain.rnd = rnd
            assert participant.handle(gw.RoundEvent(round=rnd)) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and all("the global model is not in the store" in m and LOST.hex() in m for m in said)
    assert participant.actions == []
