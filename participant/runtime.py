"""The participant runtime: watch rounds through a gateway; train and submit when drawn as a
proposer, measure every update on its own data and vote when drawn as a voter. What it trains and
measures is its learner's business (participant.learner): a Flower client or the built-in digits.

Work is sealed: an update (ballot) is committed first and revealed once every commitment is in
(abci_app/sealing.py). The salt is derived from the key and the round, and the chain is the
participant's memory: before acting it checks the round's commitments, `submitted` list and
ballots, so a participant that is killed and restarted mid-round never acts twice, and one that
restarts between its commitment and its reveal recomputes its work and reveals it if it is what it
committed (the built-in learner's training is seeded; an evaluation always repeats). The chain
refuses a second commitment, update or ballot from one participant in one round.

A model above the chain's inline limit is federated by reference (client.artifacts): updates go to
an object store and their digests on chain; voters fetch, verify and check each update, scoring
one they cannot use as UNUSABLE_SCORE, and then, as the round's aggregators, store the new model
and report its digest.
"""

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from abci_app import genesis
from abci_app.codes import CODESPACE, Code
from abci_app.messages import UNUSABLE_SCORE
from abci_app.tensors import named_floats, to_float
from client import artifacts
from client import tx as txb
from client.blobs import BlobInvalid
from client.gateway_client import ChainError, GatewayClient, NotFound, RoundWatch, TxRejected
from client.keys import Key
from client.object_store import BlobMissing, ObjectStore, StoreUnavailable
from client.signer import Signer
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import types_pb2
from participant.behaviours import Behaviour, Honest
from participant.duties import Evidence, judge, part_for
from participant.learner import Learner
from participant.params import Params

log = logging.getLogger("flchain.participant")
BONDED = types_pb2.PARTICIPANT_STATUS_BONDED
# By reference a voter keeps the updates it judged, as int32, for its aggregate while they fit in
# this many bytes (10M parameters: 40 MB an update): fetching the included ones again was about a
# third of what a voter fetched a round. A larger update (100M parameters: 400 MB) is fetched again:
# a voter already holds the model, its step and its own float copies of the updates it judges.
HOLD_UPDATES_BYTES = 256 * 2**20
# Refusals that mean "too late or already done", not a fault: the round moved on without us.
_MISSED = {
    Code.WRONG_PHASE,
    Code.WRONG_ROUND,
    Code.ALREADY_SUBMITTED,
    Code.ALREADY_VOTED,
    Code.ALREADY_COMMITTED,
    Code.ALREADY_REPORTED,
}


@dataclass
class _HeldModel:
    """The global model version this participant last read, kept until the chain adopts another: by
    reference, a voter reads the model (and, for the momentum step, the version before) to judge
    and again to aggregate, and this way fetches each file once a round."""

    version: int
    digest: bytes  # by reference: the file's digest; inline: empty
    tensors: list[types_pb2.Tensor]
    step: list | None = None  # the last move, read on first need (proposers do not)


@dataclass
class _JudgedUpdate:
    """An update by reference a voter judged, kept for its round's aggregate (HOLD_UPDATES_BYTES)."""

    round: int
    digest: bytes
    weight: int
    arrays: list[np.ndarray]  # int32: fixed-point values fit it, at half the memory of int64
    norm: int

    def fixed(self) -> artifacts.FixedUpdate:
        return artifacts.FixedUpdate(self.weight, [a.astype(np.int64) for a in self.arrays], self.norm)


@dataclass
class Participant:
    key: Key
    client: GatewayClient
    learner: Learner
    behaviour: Behaviour = field(default_factory=Honest)  # how it reports its evidence (experiments: lies)
    bond: int = genesis.STANDARD_BOND
    store: ObjectStore | None = None  # where updates and models by reference live (large models)
    hold_updates_bytes: int = HOLD_UPDATES_BYTES

    def __post_init__(self) -> None:
        self.signer = Signer(self.client, self.key)
        # (round, "committed update"|"submitted"|"committed ballot"|"voted"), in order
        self.actions: list[tuple[int, str]] = []
        self._done: set[tuple[int, str]] = set()  # (round, phase) steps this process has taken
        self._sealed: dict[tuple[int, str], txb.Sealed] = {}  # committed, not yet revealed
        self._watch: RoundWatch | None = None
        self._stopped = threading.Event()
        self._params: types_pb2.Params | None = None
        self._held: _HeldModel | None = None
        self._judged: dict[bytes, _JudgedUpdate] = {}  # by reference: proposer -> its update this round

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def params(self) -> types_pb2.Params:
        if self._params is None:
            self._params = self.client.params()  # fixed at genesis
        return self._params

    def _model(self) -> tuple[types_pb2.GlobalModel, list[types_pb2.Tensor]]:
        """The global model from the chain, its tensors from the chain or, once per version, the object store."""
        model = self.client.model()
        held = self._held
        if held is None or (held.version, held.digest) != (model.version, model.ref.digest):
            held = self._held = _HeldModel(model.version, model.ref.digest, artifacts.model_tensors(model, self.store))
        return model, held.tensors

    def _step(self, model: types_pb2.GlobalModel) -> list:
        """The model's last move (server momentum), read once per version; `model` is what _model() returned."""
        held = self._held
        assert held is not None and held.version == model.version, "_model() reads the model first"
        if held.step is None:
            held.step = artifacts.model_step(model, held.tensors, self.store)
        return held.step

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
        loss = self.learner.loss(named_floats(self._model()[1], self.params.frac_bits))
        log.info("%s ready: global model at %.3f loss on its own data", self.name, loss)

    # -- duties ------------------------------------------------------------------------------

    def handle(self, event: gw.RoundEvent) -> str | None:
        """Do this participant's duty for the phase in `event`, at most once; what it did, or None.

        Work is sealed: the update (ballot) is committed in PROPOSE (VOTE) and revealed in the next
        phase, from memory, or, after a restart, recomputed and checked against the commitment."""
        rnd = event.round
        address = self.key.address
        step = (rnd.id, types_pb2.Phase.Name(rnd.phase))
        for stale in [k for k in self._sealed if k[0] < rnd.id]:  # a round that ended before its reveal
            del self._sealed[stale]
        if step in self._done:
            return None  # this process already did this step (its tx may not be in a block yet)
        try:
            if address in rnd.proposers and rnd.phase in (types_pb2.PHASE_PROPOSE, types_pb2.PHASE_REVEAL_UPDATES):
                done = self._propose(rnd)
            elif address in rnd.voters and rnd.phase in (types_pb2.PHASE_VOTE, types_pb2.PHASE_REVEAL_BALLOTS):
                done = self._vote(rnd)
            elif rnd.phase == types_pb2.PHASE_AGGREGATE and any(b.voter == address for b in rnd.ballots):
                done = self._aggregate(rnd)
            else:
                return None
        except TxRejected as err:
            if err.code in _MISSED and err.codespace == CODESPACE:
                log.warning("%s: round %d moved on before our tx (%s)", self.name, rnd.id, err.log)
                return None
            raise
        except StoreUnavailable as err:  # not judged: the phase's deadline decides (see rounds.py)
            log.error("%s: round %d: the object store does not answer (%s)", self.name, rnd.id, err)
            return None
        except (BlobMissing, BlobInvalid) as err:  # only the global model raises these (an update is judged)
            log.error(
                "%s: round %d: the global model is not in the store as the chain holds it (%s)",
                self.name,
                rnd.id,
                err,
            )
            return None  # the step stays undone: a store restored from backup lets the next event do it
        if done:
            self._done.add(step)
            self.actions.append((rnd.id, done))
        return done

    def _propose(self, rnd: types_pb2.Round) -> str | None:
        current = self.client.round()

        def train() -> txb.Sealed:
            model, model_tensors = self._model()
            update, num_samples = self.learner.train(named_floats(model_tensors, self.params.frac_bits), rnd.id)
            salt = txb.derive_salt(self.key, self.client.chain_id, rnd.id, b"update")
            if model.HasField("ref"):  # the same update gives the same file: a restart stores it again, harmlessly
                published = artifacts.publish_update(self.store, update, self.params.frac_bits)
                return txb.sealed_reference(
                    self.key.address, rnd.id, published.ref, published.fingerprint, num_samples, salt
                )
            return txb.sealed_update(self.key.address, rnd.id, update, num_samples, salt)

        done = self.key.address in current.submitted
        return self._sealed_duty(rnd, "update", current.update_commitments, done, train)

    def _vote(self, rnd: types_pb2.Round) -> str | None:
        current = self.client.round()

        def measure() -> txb.Sealed:
            loss, start_loss, scores, alignments = self._evidence(rnd)
            salt = txb.derive_salt(self.key, self.client.chain_id, rnd.id, b"ballot")
            return txb.sealed_ballot(self.key.address, rnd.id, loss, scores, salt, alignments, start_loss=start_loss)

        done = any(b.voter == self.key.address for b in current.ballots)
        return self._sealed_duty(rnd, "ballot", current.ballot_commitments, done, measure)

    def _sealed_duty(
        self,
        rnd: types_pb2.Round,
        kind: str,
        commitments: Iterable[types_pb2.Commitment],
        done: bool,
        work: Callable[[], txb.Sealed],
    ) -> str | None:
        """Commit to `work()` in the commit phase, reveal it in the reveal phase; what was sent, or None.

        Work committed before a restart is not in memory: it is recomputed at the reveal, and revealed
        only if it is what the chain holds the commitment of."""
        committed = {c.sender: c.digest for c in commitments}.get(self.key.address)
        revealing = rnd.phase in (types_pb2.PHASE_REVEAL_UPDATES, types_pb2.PHASE_REVEAL_BALLOTS)
        if done or (revealing and committed is None):
            return None
        if not revealing and committed is not None and (rnd.id, kind) not in self._sealed:
            return None  # committed before a restart: recomputed at the reveal
        sealed = self._sealed.get((rnd.id, kind))
        if sealed is None:
            sealed = self._sealed[(rnd.id, kind)] = work()
        if not revealing:
            self.signer.send([sealed.commit])
            log.info("%s committed its %s for round %d", self.name, kind, rnd.id)
            return f"committed {kind}"
        commitment = sealed.commit.commit_update if kind == "update" else sealed.commit.commit_ballot
        if committed != commitment.commitment:  # recomputed after a restart, and training is not repeatable
            log.error("%s cannot reveal its %s for round %d: it is not what was committed", self.name, kind, rnd.id)
            return None
        self.signer.send([sealed.reveal])
        self._sealed.pop((rnd.id, kind), None)
        log.info("%s revealed its %s for round %d", self.name, kind, rnd.id)
        return "submitted" if kind == "update" else "voted"

    def _evidence(self, rnd: types_pb2.Round) -> tuple[int, int, list[int], list[int]]:
        """The losses with every usable update and at the start, leave-one-out evidence and
        alignments on every usable update; an unusable one (by reference: missing, not as
        referenced, out of bounds) scores UNUSABLE_SCORE, aligns 0 and joins no aggregate."""
        updates = self._round_updates(rnd)
        model, model_tensors = self._model()
        frac_bits = self.params.frac_bits
        step = self._step(model)
        base = named_floats(artifacts.judged_model(model_tensors, step, self.params.server_momentum_bps), frac_bits)
        measured: dict[int, tuple[Params, int]] = {}  # each update held once, in float32 (large models)
        self._judged, room = {}, self.hold_updates_bytes
        for i, update in enumerate(updates):
            try:
                fixed = artifacts.fetch_update(update, model, self.params, self.store)
            except artifacts.Unusable as err:
                log.warning("%s: round %d: update %d is unusable: %s", self.name, rnd.id, i, err)
                continue
            floats = [(name, to_float(values, frac_bits)) for (name, _), values in zip(base, fixed.arrays)]
            measured[i] = (floats, fixed.weight)
            size = 4 * sum(a.size for a in fixed.arrays)
            if update.HasField("ref") and size <= room:
                arrays = [a.astype(np.int32) for a in fixed.arrays]
                self._judged[update.proposer] = _JudgedUpdate(
                    rnd.id, update.ref.digest, fixed.weight, arrays, fixed.norm
                )
                room -= size
        if measured:
            part = part_for(len(measured), rnd.id)
            evidence = judge(lambda params: self.learner.loss(params, part), base, list(measured.values()))
        else:
            start_loss = self.learner.loss(base)
            evidence = Evidence(start_loss, [], [], start_loss)
        reported = iter(self.behaviour.report(evidence.loss, evidence.scores, [False] * len(measured)))
        aligned = iter(self.behaviour.align(evidence.alignments, [False] * len(measured)))
        start_loss = self.behaviour.report_start(evidence.loss, evidence.start_loss, [False] * len(measured))
        log.info(
            "%s measured round %d's %d updates (loss %.3f with all of them, %.3f without any)",
            self.name,
            rnd.id,
            len(measured),
            evidence.loss,
            evidence.start_loss,
        )
        scores = [txb.evidence_units(next(reported)) if i in measured else UNUSABLE_SCORE for i in range(len(updates))]
        alignments = [txb.alignment_units(next(aligned)) if i in measured else 0 for i in range(len(updates))]
        return txb.loss_units(evidence.loss), txb.loss_units(start_loss), scores, alignments

    def _round_updates(self, rnd: types_pb2.Round) -> list[types_pb2.Update]:
        updates = self.client.updates()
        if [u.proposer for u in updates] != list(rnd.submitted) or any(u.round != rnd.id for u in updates):
            raise ChainError(f"the updates under vote are not round {rnd.id}'s")
        return updates

    def _aggregate(self, rnd: types_pb2.Round) -> str | None:
        """Models by reference: store the next model (global model + FedAvg of the included updates +
        momentum); report its digest."""
        current = self.client.round()
        if current.id != rnd.id or any(r.sender == self.key.address for r in current.aggregate_reports):
            return None
        included = {v.proposer for v in rnd.verdicts if v.included}
        model, model_tensors = self._model()
        try:
            fixed = [self._included_update(rnd, u, model) for u in self._round_updates(rnd) if u.proposer in included]
        except artifacts.Unusable as err:  # the stake majority saw it; this aggregator cannot
            log.error("%s: round %d: an included update is unusable here (%s); not aggregating", self.name, rnd.id, err)
            return None
        finally:
            self._judged = {}
        step = self._step(model)
        ref = artifacts.publish_aggregate(
            self.store, model_tensors, fixed, rnd.norm_bound, step, self.params.server_momentum_bps
        )
        self.signer.send([txb.report_aggregate(rnd.id, ref.digest, ref.size, [u.norm for u in fixed])])
        log.info("%s reported round %d's aggregate %s", self.name, rnd.id, ref.digest.hex()[:12])
        return "aggregated"

    def _included_update(
        self, rnd: types_pb2.Round, update: types_pb2.Update, model: types_pb2.GlobalModel
    ) -> artifacts.FixedUpdate:
        """An included update as this voter judged it, or fetched again where it did not keep it."""
        judged = self._judged.pop(update.proposer, None)
        if judged is not None and (judged.round, judged.digest) == (rnd.id, update.ref.digest):
            return judged.fixed()
        return artifacts.fetch_update(update, model, self.params, self.store, check_fingerprint=False)

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
