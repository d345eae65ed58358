"""`flchain demo`: a federation of torch participants on a real 4-validator localnet.

It starts the localnet (CometBFT + flchain app + gateway per validator), gives each participant
its shard of the digits and a behaviour (a chosen fraction attack), runs every participant's
runtime against a gateway, and watches the rounds like any other client would. After each tallied
round it measures the global model on a test set no participant holds and reads every stake from
the chain. The report folder gets rounds.csv, summary.json, accuracy.png and stake.png, the same
report `flchain simulate run` writes, so the two can be compared side by side.
"""

import threading
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from abci_app.tensors import named_floats
from client import artifacts, endpoints
from client.gateway_client import GatewayClient
from client.object_store import ObjectStore
from experiments.config import REFERENCE, SimConfig
from experiments.records import RoundRecord, SimResult, record_round
from flchain.v1 import types_pb2
from localnet import Localnet, launch
from localnet import config as cfg
from localnet.genesis import PARTICIPANT_BALANCE, participant_keys
from participant import behaviours
from participant.digits import DigitsLearner
from participant.ml import data, models
from participant.ml.training import evaluate
from participant.runtime import Crew, Participant

STALL_S = 120  # no round event for this long means the chain or the gateways are stuck


@dataclass
class DemoConfig:
    """The federation (in the simulator's terms, so reports and baselines compare) and where it runs."""

    federation: SimConfig = field(default_factory=lambda: SimConfig(rounds=20, mode="localnet"))
    validators: int = cfg.DEFAULT_VALIDATORS
    home: Path = cfg.DEFAULT_HOME
    base_port: int = endpoints.BASE_PORT
    out: Path = Path("reports/demo")
    keep_running: bool = False
    store: bool = False  # run the localnet's object store: needed by a model above the inline limit
    baselines: tuple[str, ...] = ("fedavg", "median", REFERENCE)


class Demo:
    def __init__(self, config: DemoConfig):
        self.config = config
        fed = config.federation
        self.behaviours = behaviours.assign(
            fed.participants, fed.attacker_fraction, fed.attack, fed.attackers_lie, fed.seed
        )
        self.malicious = [b.malicious for b in self.behaviours]
        self.shards, self.global_test = data.partition(fed.participants, alpha=fed.alpha, seed=fed.seed)
        self.net: Localnet | None = None
        self.participants: list[Participant] = []
        self.crew = Crew([])
        self.records: list[RoundRecord] = []
        self.store: ObjectStore | None = None

    def start(self) -> None:
        c, fed = self.config, self.config.federation
        self.net = net = launch.start(
            c.home,
            c.validators,
            participants=fed.participants,
            base_port=c.base_port,
            fresh=True,
            model=models.initial_params(fed.model, fed.seed),
            store=c.store,
        )
        self.store = ObjectStore(net.store().url) if c.store else None
        keys = participant_keys(launch.keys_dir(c.home), fed.participants)
        for i, key in enumerate(keys):
            client = GatewayClient(net.ports(i % c.validators).gateway_address)
            learner = DigitsLearner(self.shards[i], self.behaviours[i], fed.model, fed.train, seed=fed.seed * 7919 + i)
            self.participants.append(Participant(key, client, learner, self.behaviours[i], store=self.store))
        self.crew = Crew(self.participants)
        self.crew.start()

    def running_net(self) -> Localnet:
        if self.net is None:
            raise RuntimeError("the demo's localnet has not been started")
        return self.net

    def stop(self) -> None:
        self.crew.stop()
        if self.net is not None and not self.config.keep_running:
            self.net.down()

    def watch(self, bar: tqdm | None = None) -> SimResult:
        """Follow the rounds on node 0's gateway until `rounds` rounds have been tallied."""
        net = self.running_net()
        observer = GatewayClient(net.ports(0).gateway_address)
        frac_bits = observer.params().frac_bits
        accepted = rejected = 0
        watch = observer.watch_rounds()
        for event in events_with_stall_guard(watch):
            if event.HasField("finished"):
                record = self._record(observer, event.finished, frac_bits)
                self.records.append(record)
                accepted += record.outcome == "accepted"
                rejected += record.outcome == "rejected"
                if bar is not None:
                    bar.update()
            if bar is not None:
                last = self.records[-1] if self.records else None
                bar.set_postfix(
                    round=event.round.id,
                    phase=types_pb2.Phase.Name(event.round.phase)[6:].lower(),
                    acc=f"{last.accuracy:.3f}" if last else "-",
                    accepted=accepted,
                    rejected=rejected,
                    attackers=last.attackers_bonded if last else sum(self.malicious),
                )
            if len(self.records) >= self.config.federation.rounds:
                watch.cancel()
                break
        if len(self.records) < self.config.federation.rounds:
            raise RuntimeError(
                f"no round event for {STALL_S}s after {len(self.records)} rounds; read the logs in {net.log_dir}"
            )
        initial = [PARTICIPANT_BALANCE] * self.config.federation.participants
        stakes = self.records[-1].stakes  # read after the last tally; nobody unbonds in the demo
        final = [observer.account(p.key.bech32).balance + stake for p, stake in zip(self.participants, stakes)]
        observer.close()
        return SimResult(self.config.federation, self.malicious, self.records, initial, final, None, None)

    def _record(self, observer: GatewayClient, finished: types_pb2.Round, frac_bits: int) -> RoundRecord:
        model = artifacts.model_tensors(observer.model(), self.store)
        accuracy, loss = evaluate(self.config.federation.model, named_floats(model, frac_bits), self.global_test)
        return record_round(
            len(self.records) + 1,
            finished,
            [p.key.address for p in self.participants],
            {p.address: p for p in observer.participants()},
            self.malicious,
            accuracy,
            loss,
        )


def events_with_stall_guard(watch):
    """The watch's events; a stalled chain ends the iteration after STALL_S without events."""
    timer = None
    try:
        for event in watch:
            if timer is not None:
                timer.cancel()
            timer = threading.Timer(STALL_S, watch.cancel)
            timer.daemon = True
            timer.start()
            yield event
    finally:
        if timer is not None:
            timer.cancel()
