"""A 10M-parameter model federated by reference on a real 4-validator localnet with its object store:
participants store updates in SeaweedFS and commit their digests, voters fetch and verify them,
aggregators agree on the new model's digest; a proposer whose file is missing, one that sends another's
earlier update again (a copy) and an aggregator that lies are caught, and no validator holds the
model's bytes."""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from abci_app import genesis
from client import blobs
from client import tx as txb
from client.gateway_client import GatewayClient
from client.object_store import ObjectStore
from flchain.v1 import types_pb2
from localnet import launch
from localnet.genesis import participant_keys
from localnet.store import default_weed
from participant.digits import DigitsLearner
from participant.ml import data, models
from participant.ml.config import TrainConfig
from participant.runtime import Crew, Participant

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not default_weed().exists(), reason="SeaweedFS missing: run scripts/setup.sh"),
]
PARTICIPANTS = 5  # every round draws all of them: 2 proposers, 3 voters (who then aggregate)
MIN_PARTICIPANTS = 3  # rounds go on once the forgetful proposer is slashed out (1 proposer, 3 voters)
MODEL_BYTES = 40_020_040  # 10,005,010 float32 parameters


class ForgetfulStore(ObjectStore):
    """Says it stored a file and stores nothing: whatever its owner references is missing."""

    def put(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()


class LyingAggregator(Participant):
    """Reports a digest of its own invention instead of the aggregate it should compute."""

    def _aggregate(self, rnd: types_pb2.Round) -> str | None:
        norms = [1] * sum(v.included for v in rnd.verdicts)  # one per included update, or the tx is refused
        self.signer.send([txb.report_aggregate(rnd.id, hashlib.sha256(b"lie%d" % rnd.id).digest(), 12_345, norms)])
        return "aggregated"


class RecordingLearner(DigitsLearner):
    """Honest, and keeps the last update it trained, for a copier to take."""

    last: tuple[int, list, int] | None = None  # round, update, num_samples

    def train(self, global_params, round_id):
        update, num_samples = super().train(global_params, round_id)
        self.last = (round_id, update, num_samples)
        return update, num_samples


class CopyingLearner(DigitsLearner):
    """Honest, except once: the first time it proposes after one of its sources trained in an
    earlier round, it sends the latest such update (the store holds its file already)."""

    def __init__(self, *args, sources: list[RecordingLearner], **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = sources
        self.copied: tuple[int, int] | None = None  # round, index of the source in `sources`

    def train(self, global_params, round_id):
        earlier = [(s.last, i) for i, s in enumerate(self.sources) if s.last is not None and s.last[0] < round_id]
        if self.copied is None and earlier:
            (_, update, num_samples), i = max(earlier, key=lambda e: e[0][0])
            self.copied = (round_id, i)
            return update, num_samples
        return super().train(global_params, round_id)


def params() -> types_pb2.Params:
    p = genesis.default_params()
    # 6 seats: 5 participants draw 2 proposers and 3 voters, the 4 left after the forgetful one is
    # slashed out draw 1 and 3 (rounds.draw), so every committee has two honest aggregators to outvote the liar
    p.num_proposers, p.num_voters, p.min_participants = 2, 4, MIN_PARTICIPANTS
    p.propose_timeout_ms, p.vote_timeout_ms = 120_000, 120_000  # phases end on their last tx long before
    p.reveal_timeout_ms = p.aggregate_timeout_ms = 60_000
    return p


def rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_a_10m_parameter_model_is_federated_by_reference(tmp_path, cometbft_bin, port_base):
    home = tmp_path / "net"
    initial = models.initial_params("wide")
    assert genesis.model_bytes([v.shape for _, v in initial]) == MODEL_BYTES
    net = launch.start(
        home,
        validators=4,
        participants=PARTICIPANTS,
        bonded_at_genesis=PARTICIPANTS,
        base_port=port_base(4),
        fresh=True,
        params=params(),
        model=initial,
        store=True,
        timeout_commit="200ms",
    )
    crew = Crew([])
    try:
        url = net.store_url
        assert url is not None
        keys = participant_keys(launch.keys_dir(home), PARTICIPANTS)
        shards, _ = data.partition(PARTICIPANTS, alpha=None, seed=0)
        forgetful, liar, copier = keys[0].address, keys[1].address, keys[4].address
        config = TrainConfig(epochs=1, lr=0.003)
        learners = [DigitsLearner(shards[0], kind="wide", config=config, seed=0)]
        learners += [RecordingLearner(shards[i], kind="wide", config=config, seed=i) for i in (1, 2, 3)]
        copying = CopyingLearner(shards[4], kind="wide", config=config, seed=4, sources=learners[1:4])
        learners.append(copying)
        crew = Crew(
            [
                (LyingAggregator if i == 1 else Participant)(
                    key,
                    GatewayClient(net.ports(i % 4).gateway_address),
                    learners[i],
                    store=ForgetfulStore(url) if i == 0 else ObjectStore(url),
                )
                for i, key in enumerate(keys)
            ]
        )
        crew.start()
        observer = GatewayClient(net.ports(0).gateway_address)
        genesis_model = observer.model()
        finished: list[types_pb2.Round] = []
        watch = observer.watch_rounds()
        timer = threading.Timer(480, watch.cancel)  # a stuck federation fails the test, it does not hang it
        timer.start()

        def seen(pred) -> bool:
            return any(pred(r) for r in finished)

        for event in watch:
            if event.HasField("finished"):
                finished.append(event.finished)
            proposed = seen(lambda r: forgetful in r.submitted and r.ballots)
            lied = seen(
                lambda r: r.outcome == types_pb2.OUTCOME_ACCEPTED and any(a.sender == liar for a in r.aggregate_reports)
            )
            accepted = sum(r.outcome == types_pb2.OUTCOME_ACCEPTED for r in finished)
            copied = seen(lambda r: copying.copied is not None and r.id == copying.copied[0] and r.ballots)
            # the draw decides when the forgetful proposer and the copier are drawn: once the forgetful one
            # is removed a round draws 1 proposer of 4; 10 rounds missed the forgetful one in about 2% of
            # runs (CI saw one); 30 rounds miss either in about 0.02% (a simulation of the draw)
            if (proposed and lied and copied and accepted >= 2) or len(finished) >= 30:
                watch.cancel()
                break
        timer.cancel()
        assert proposed and lied and copied and accepted >= 2, [
            (r.id, types_pb2.Outcome.Name(r.outcome)) for r in finished
        ]

        # the forgetful proposer's update is missing for every voter: condemned whenever it proposed
        for r in finished:
            if forgetful in r.submitted and r.ballots:
                verdict = next(v for v in r.verdicts if v.proposer == forgetful)
                assert verdict.condemned and not verdict.included, r
        # every accepted round adopted the digest its honest aggregators agreed on; the liar's was not it
        history = {
            k.address: [e.reason for e in observer.participant(k.bech32).history if e.kind == "slashed"] for k in keys
        }
        assert "update_condemned" in history[forgetful] and "aggregate_mismatch" in history[liar]
        # the copy: the same file as its source's earlier update, so the fingerprint it revealed (the
        # voters checked it) is its source's, and the copy rule condemned it whatever the ballots said
        assert copying.copied is not None
        copy_round_id, source = copying.copied[0], keys[1 + copying.copied[1]].address
        verdict = next(v for v in next(r for r in finished if r.id == copy_round_id).verdicts if v.proposer == copier)
        assert verdict.condemned and not verdict.included and verdict.copy_of == source, verdict
        assert history[copier] == ["update_copied"]
        assert all("update_copied" not in history[k.address] for k in keys if k.address != copier)
        assert all("aggregate_mismatch" not in history[k.address] for k in keys if k.address != liar)
        for r in finished:
            if r.outcome == types_pb2.OUTCOME_ACCEPTED:
                digests = {a.digest for a in r.aggregate_reports if a.sender != liar}
                assert len(digests) == 1 and len([a for a in r.aggregate_reports if a.sender != liar]) >= 2
        # the honest aggregators agreed on the included updates' norms too; they bound the next round
        first = next(r for r in finished if r.outcome == types_pb2.OUTCOME_ACCEPTED)
        honest = [list(a.norms) for a in first.aggregate_reports if a.sender != liar]
        included = sum(v.included for v in first.verdicts)
        assert all(n == honest[0] for n in honest) and len(honest[0]) == included and min(honest[0]) > 0
        assert all(r.norm_bound == 0 for r in finished if r.id <= first.id)
        median = sorted(honest[0])[(included - 1) // 2]
        after = next(r for r in finished if r.id == first.id + 1)
        assert after.norm_bound == median * params().norm_bound_bps // 10_000
        assert all(r.norm_bound > 0 for r in finished if r.id > first.id)

        # the global model is a file in the store: 10M fixed-point parameters, as the chain names them
        model = observer.model()
        assert model.version >= 2 and model.ref.digest != genesis_model.ref.digest
        tensors = blobs.decode(ObjectStore(url).get(model.ref.digest, model.ref.size), model.ref)
        assert [(t.name, tuple(t.shape)) for t in tensors] == [(n, v.shape) for n, v in initial]
        assert all(t.dtype == types_pb2.DTYPE_FIXED32 for t in tensors)

        # validators never held the bytes: each node's state is far smaller than one model
        for i in range(4):
            state = tree_bytes(net.node_home(i) / "app")
            assert state < MODEL_BYTES // 8, f"node {i} holds {state} bytes of state"
        peaks = [rss_peak_kib(row["pids"]["app"]) for row in net.status()]
        assert max(peaks) * 1024 < 4 * MODEL_BYTES, peaks  # the app never loaded a model, let alone four
        observer.close()
    finally:
        crew.stop()
        net.down()
    assert not os.path.exists(home / "pids.json")
