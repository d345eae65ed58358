"""A voter on a chain of models by reference reads each model file once per model version: judging
and then aggregating a round need the model and, for the server momentum's step, the version before
it, and a large model's files are the bulk of what a voter fetches."""

import hashlib
from collections import Counter

import numpy as np

from abci_app import copies, genesis, tensors
from client import blobs
from client.keys import Key
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import tx_pb2, types_pb2
from participant.runtime import Participant
from tests.chain import KeptFiles

FRAC_BITS = genesis.default_params().frac_bits


def fixed(values: list[float]) -> types_pb2.Tensor:
    return tensors.encode("w", np.round(np.array(values) * 2**FRAC_BITS).astype(np.int64))


class CountingStore(KeptFiles):
    """An object store in memory that counts the reads of each file."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[bytes] = Counter()

    def get(self, digest: bytes, size: int | None = None) -> bytes:
        self.reads[digest] += 1
        return super().get(digest, size)

    def stored(self, values: list[float]) -> types_pb2.BlobRef:
        data, ref = blobs.file_of([fixed(values)])
        self.put(data)
        return ref


class ChainOfReferences:
    """What the voter reads from its gateway: a model by reference with the version before it, one
    update by reference under vote (included), and a broadcast that accepts the aggregate's report."""

    chain_id = "flchain-test"

    def __init__(self, store: CountingStore, voter: bytes, proposer: bytes):
        self.params_ = genesis.default_params()
        self.before = store.stored([1.0, 2.0])
        self.current = store.stored([1.5, 1.0])
        self.version = 2
        update_ref = store.stored([0.25, -0.25])
        fingerprint = copies.fingerprint_of([tensors.read(fixed([0.25, -0.25]))]).tolist()
        self.update = types_pb2.Update(
            round=3, proposer=proposer, num_samples=10, weight=10, ref=update_ref, fingerprint=fingerprint
        )
        self.rnd = types_pb2.Round(
            id=3,
            phase=types_pb2.PHASE_AGGREGATE,
            voters=[voter],
            submitted=[proposer],
            verdicts=[types_pb2.Verdict(proposer=proposer, included=True)],
        )
        self.sent: list[bytes] = []

    def params(self) -> types_pb2.Params:
        return self.params_

    def model(self) -> types_pb2.GlobalModel:
        return types_pb2.GlobalModel(version=self.version, round=2, ref=self.current, previous=self.before)

    def round(self) -> types_pb2.Round:
        return self.rnd

    def updates(self) -> list[types_pb2.Update]:
        return [self.update]

    def account(self, address: str) -> types_pb2.Account:
        return types_pb2.Account(nonce=0)

    def broadcast(self, tx: bytes) -> gw.BroadcastTxResponse:
        self.sent.append(tx)
        return gw.BroadcastTxResponse(code=0, hash=b"h")


class ConstantLearner:
    def loss(self, params, part=None) -> float:
        return 1.0


def voter_on_a_chain() -> tuple[Participant, ChainOfReferences, CountingStore]:
    store = CountingStore()
    voter = Key.from_seed("v", hashlib.sha256(b"v").digest())
    proposer = Key.from_seed("p", hashlib.sha256(b"p").digest()).address
    chain = ChainOfReferences(store, voter.address, proposer)
    return Participant(voter, chain, ConstantLearner(), store=store), chain, store


def aggregate_digest(participant: Participant, chain: ChainOfReferences) -> bytes:
    assert participant._aggregate(chain.rnd) == "aggregated"
    body = tx_pb2.TxBody.FromString(tx_pb2.Tx.FromString(chain.sent[-1]).body_bytes)
    return body.messages[0].report_aggregate.digest


def test_judging_and_aggregating_a_round_read_each_file_once():
    participant, chain, store = voter_on_a_chain()
    participant._evidence(chain.rnd)
    digest = aggregate_digest(participant, chain)
    assert store.reads[chain.current.digest] == 1
    assert store.reads[chain.before.digest] == 1
    assert store.reads[chain.update.ref.digest] == 1  # the update it judged is the one it aggregates

    # beyond the room to keep them, updates are read again, and the aggregate is the same file
    fetching, chain, store = voter_on_a_chain()
    fetching.hold_updates_bytes = 0
    fetching._evidence(chain.rnd)
    assert aggregate_digest(fetching, chain) == digest
    assert store.reads[chain.update.ref.digest] == 2


def test_an_update_kept_from_another_round_or_file_is_not_aggregated():
    participant, chain, store = voter_on_a_chain()
    participant._evidence(chain.rnd)
    chain.update.ref.CopyFrom(store.stored([0.5, -0.5]))  # not the file it judged
    participant._aggregate(chain.rnd)
    assert store.reads[chain.update.ref.digest] == 1  # read for the aggregate


def test_a_new_model_version_is_read_anew():
    participant, chain, store = voter_on_a_chain()
    participant._evidence(chain.rnd)
    chain.before, chain.current, chain.version = chain.current, store.stored([2.0, 0.5]), 3
    participant._evidence(chain.rnd)
    assert store.reads[chain.current.digest] == 1  # the new version
    assert store.reads[chain.before.digest] == 2  # the old current, read again as the version before
