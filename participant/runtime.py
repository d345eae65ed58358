"""The participant runtime: watch rounds through a gateway; train and submit when drawn as a
proposer, measure every update on its own data and vote when drawn as a voter. What it trains and
measures is its learner's business (participant.learner): a Flower client or the built-in digits.

The chain is the participant's memory: before acting it checks the round's `submitted` list and
ballots, so a participant that is killed and restarted mid-round never acts twice, and one that
joins late does whatever its role still allows. (A restart that comes before the first tx was
committed signs the very same bytes again if training is seeded, as the built-in learner's is,
and the node drops the copy; failing that, the chain refuses a second update or ballot from one
participant in one round.)
"""

import logging
import threading
from dataclasses import dataclass, field

from abci_app import genesis
from abci_app.codes import CODESPACE, Code
from abci_app.tensors import named_floats
from client import tx as txb
from client.gateway_client import ChainError, GatewayClient, NotFound, RoundWatch, TxRejected
from client.keys import Key
from client.signer import Signer
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import types_pb2
from participant.behaviours import Behaviour, Honest
from participant.duties import judge
from participant.learner import Learner

log = logging.getLogger("flchain.participant")
BONDED = types_pb2.PARTICIPANT_STATUS_BONDED
# Refusals that mean "too late or already done", not a fault: the round moved on without us.
_MISSED = {Code.WRONG_PHASE, Code.WRONG_ROUND, Code.ALREADY_SUBMITTED, Code.ALREADY_VOTED}


@dataclass
class Participant:
    key: Key
    client: GatewayClient
    learner: Learner
    behaviour: Behaviour = field(default_factory=Honest)  # how it reports its evidence (experiments: lies)
    bond: int = genesis.STANDARD_BOND

    def __post_init__(self) -> None:
        self.signer = Signer(self.client, self.key)
        self.actions: list[tuple[int, str]] = []  # (round, "submitted"|"voted")
        self._watch: RoundWatch | None = None
        self._stopped = threading.Event()
        self._frac_bits: int | None = None

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def frac_bits(self) -> int:
        if self._frac_bits is None:
            self._frac_bits = self.client.params().frac_bits
        return self._frac_bits

    # -- staking -----------------------------------------------------------------------------

    def ensure_bonded(self) -> None:
        """Bond `bond` tokens unless this key is already a bonded participant."""
        try:
            info = self.client.participant(self.key.bech32)
            if info.participant.status == BONDED:
                return
        except NotFound:
            pass
        self.signer.send([txb.bond(self.bond)])
        log.info("%s bonded %d", self.name, self.bond)

    def warm_up(self) -> None:
        """Evaluate the global model once: a framework's first call is often slow, and checking the
        model against the learner before the first draw reports a mismatch early."""
        loss = self.learner.loss(named_floats(self.client.model().tensors, self.frac_bits))
        log.info("%s ready: global model at %.3f loss on its own data", self.name, loss)

    # -- duties ------------------------------------------------------------------------------

    def handle(self, event: gw.RoundEvent) -> str | None:
        """Do this participant's duty for the round in `event`, at most once; what it did, or None."""
        rnd = event.round
        address = self.key.address
        if any(round_id == rnd.id for round_id, _ in self.actions):
            return None  # this process already did its duty (its tx may not be in a block yet)
        try:
            if rnd.phase == types_pb2.PHASE_PROPOSE and address in rnd.proposers:
                if address in self.client.round().submitted:
                    return None
                return self._propose(rnd)
            if rnd.phase == types_pb2.PHASE_VOTE and address in rnd.voters:
                if any(b.voter == address for b in self.client.round().ballots):
                    return None
                return self._vote(rnd)
        except TxRejected as err:
            if err.code in _MISSED and err.codespace == CODESPACE:
                log.warning("%s: round %d moved on before our tx (%s)", self.name, rnd.id, err.log)
                return None
            raise
        return None

    def _propose(self, rnd: types_pb2.Round) -> str:
        model = self.client.model()
        update, num_samples = self.learner.train(named_floats(model.tensors, self.frac_bits), rnd.id)
        self.signer.send([txb.submit_update(rnd.id, update, num_samples)])
        self.actions.append((rnd.id, "submitted"))
        log.info("%s submitted its update for round %d", self.name, rnd.id)
        return "submitted"

    def _vote(self, rnd: types_pb2.Round) -> str:
        updates = self.client.updates()
        if [u.proposer for u in updates] != list(rnd.submitted) or any(u.round != rnd.id for u in updates):
            raise ChainError(f"the updates under vote are not round {rnd.id}'s")
        base = named_floats(self.client.model().tensors, self.frac_bits)
        evidence = judge(
            self.learner.loss, base, [(named_floats(u.tensors, self.frac_bits), u.num_samples) for u in updates]
        )
        scores = self.behaviour.report(evidence.loss, evidence.scores, [False] * len(updates))
        self.signer.send([txb.vote(rnd.id, txb.evidence_units(evidence.loss), [txb.evidence_units(s) for s in scores])])
        self.actions.append((rnd.id, "voted"))
        log.info(
            "%s voted on round %d's %d updates (loss %.3f with all of them)",
            self.name,
            rnd.id,
            len(updates),
            evidence.loss,
        )
        return "voted"

    # -- loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Bond if needed, then follow the rounds until stop() is called.

        A failed duty is logged in one line and the participant goes on with the next round."""
        self.ensure_bonded()
        self.warm_up()
        self._watch = self.client.watch_rounds(self.key.bech32)
        if self._stopped.is_set():
            return
        for event in self._watch:
            if self._stopped.is_set():
                break
            try:
                self.handle(event)
            except ChainError as err:
                log.error("%s: round %d: %s", self.name, event.round.id, err)

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.cancel()


class Crew:
    """Several participants in one process (a demo, a benchmark), each on its own thread; one that
    crashes says why in one line and stops alone."""

    def __init__(self, participants: list[Participant]) -> None:
        self.participants = participants
        self.threads = [threading.Thread(target=self._run, args=(p,), name=p.name, daemon=True) for p in participants]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout_s: float = 30) -> None:
        """Stop following rounds; a duty in progress is finished first (its tx needs the node)."""
        for p in self.participants:
            p.stop()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=timeout_s)

    @staticmethod
    def _run(participant: Participant) -> None:
        try:
            participant.run()
        except Exception as err:
            log.error("%s stopped: %s", participant.name, " ".join(str(err).split()))
