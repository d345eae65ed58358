"""`flchain federate`: a federation of any Flower client on a real 4-validator localnet.

The genesis model comes from the client's own get_parameters; every participant is the same
client factory on its own partition (client_fn(partition_id, num_partitions), Flower's
convention), wrapped by participant.flower and run by the ordinary participant runtime. After
each tallied round every partition's client evaluates the new global model, and the report gives
the mean loss (and accuracy, where the client reports one) beside the round's verdicts.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abci_app.phases import outcome_name
from abci_app.tensors import named_floats
from client import artifacts, endpoints
from client.gateway_client import GatewayClient
from client.object_store import ObjectStore
from experiments.demo import events_with_stall_guard
from flchain.v1 import types_pb2
from localnet import Localnet, launch
from localnet import config as cfg
from localnet.genesis import participant_keys
from participant.flower import FlowerLearner, arrays, genesis_model, load_factory
from participant.runtime import Crew, Participant


@dataclass
class FederationConfig:
    client: str  # MODULE:CLIENT_FN
    participants: int = 6
    rounds: int = 5
    validators: int = cfg.DEFAULT_VALIDATORS
    home: Path = cfg.DEFAULT_HOME
    base_port: int = endpoints.BASE_PORT
    params: types_pb2.Params | None = None  # genesis params (default: the chain's)
    keep_running: bool = False
    store: bool = False  # run the localnet's object store: needed by a model above the inline limit


@dataclass
class FederationRound:
    round_id: int
    outcome: str
    proposers: int
    submitted: int
    included: int
    condemned: int
    model_version: int
    loss: float  # mean over partitions of the client's own evaluate() of the new global model
    accuracy: float | None  # likewise, where every client reports an "accuracy" metric
    stakes: list[int] = field(default_factory=list)


class Federation:
    def __init__(self, config: FederationConfig):
        self.config = config
        factory = load_factory(config.client)
        n = config.participants
        self.clients = [factory(i, n) for i in range(n)]  # what the participants train and vote with
        self.judges = [factory(i, n) for i in range(n)]  # separate instances that score each new model
        self.net: Localnet | None = None
        self.participants: list[Participant] = []
        self.rounds: list[FederationRound] = []
        self.crew = Crew([])
        self.store: ObjectStore | None = None

    def start(self) -> None:
        c = self.config
        self.net = launch.start(
            c.home,
            c.validators,
            participants=c.participants,
            base_port=c.base_port,
            fresh=True,
            params=c.params,
            model=genesis_model(self.clients[0]),
            store=c.store,
        )
        self.store = ObjectStore(self.net.store().url) if c.store else None
        keys = participant_keys(launch.keys_dir(c.home), c.participants)
        for i, (key, client) in enumerate(zip(keys, self.clients)):
            gateway = GatewayClient(self.net.ports(i % c.validators).gateway_address)
            self.participants.append(Participant(key, gateway, FlowerLearner(client), store=self.store))
        self.crew = Crew(self.participants)
        self.crew.start()

    def watch(self, on_round=None) -> list[FederationRound]:
        """Follow node 0's gateway until `rounds` rounds are tallied (a stalled chain raises)."""
        if self.net is None:
            raise RuntimeError("start() the federation first")
        observer = GatewayClient(self.net.ports(0).gateway_address)
        frac_bits = observer.params().frac_bits
        watch = observer.watch_rounds()
        for event in events_with_stall_guard(watch):
            if event.HasField("finished"):
                self.rounds.append(self._record(observer, event.finished, frac_bits))
                if on_round:
                    on_round(self.rounds[-1])
                if len(self.rounds) >= self.config.rounds:
                    watch.cancel()
                    break
        observer.close()
        if len(self.rounds) < self.config.rounds:
            raise RuntimeError(
                f"the chain stalled after {len(self.rounds)} rounds; read the logs in {self.net.log_dir}"
            )
        return self.rounds

    def _record(self, observer: GatewayClient, finished: types_pb2.Round, frac_bits: int) -> FederationRound:
        model = observer.model()
        weights = arrays(named_floats(artifacts.model_tensors(model, self.store), frac_bits))
        scores = [judge.evaluate(weights, {}) for judge in self.judges]
        accuracies = [float(m["accuracy"]) for _, _, m in scores if "accuracy" in m]
        stakes = {p.address: p.stake for p in observer.participants()}
        return FederationRound(
            round_id=finished.id,
            outcome=outcome_name(finished.outcome),
            proposers=len(finished.proposers),
            submitted=len(finished.submitted),
            included=sum(v.included for v in finished.verdicts),
            condemned=sum(v.condemned for v in finished.verdicts),
            model_version=model.version,
            loss=float(np.mean([loss for loss, _, _ in scores])),
            accuracy=float(np.mean(accuracies)) if len(accuracies) == len(scores) else None,
            stakes=[stakes.get(p.key.address, 0) for p in self.participants],
        )

    def stop(self) -> None:
        self.crew.stop()
        if self.net is not None and not self.config.keep_running:
            self.net.down()
