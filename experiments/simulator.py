"""One simulated federation: participants with behaviours drive the chain's StateMachine in process.

Every action is a real signed tx in a real block, so stakes, draws, slashes and the model evolve
exactly as on chain; only CometBFT and the sockets are left out. Updates and ballots are sealed
as on chain: each phase's commitments go in one block and their reveals in the next phase, so a
lazy (copying) attacker sees only what earlier rounds revealed. Two ways to decide votes:
  torch: proposers train on their shard of the digits, voters evaluate the candidate on theirs;
  fast:  no ML, for large sweeps. A candidate that contains a corrupting attacker is visibly bad
         with probability p_detect, once for all voters (they judge the same candidate); each honest
         voter then judges right with probability p_accept. Both rates are measured by torch runs.
"""

import hashlib
import struct
from collections.abc import Callable

import numpy as np

from abci_app import genesis, tensors
from abci_app.machine import StateMachine
from abci_app.units import BPS
from client import artifacts
from client import tx as txb
from client.in_process import InProcessChain
from client.keys import Key
from experiments.config import SimConfig
from experiments.diagnosis import Diagnosis
from experiments.records import RoundRecord, SimResult, is_bonded, record_round
from flchain.v1 import types_pb2
from participant import behaviours
from participant.duties import Evidence
from participant.ml.config import training_seed

CHAIN_ID = "flchain-sim"
FAST_UPDATE = 2.0**-10  # fast mode's stand-in update: any non-zero step the chain accepts
# attacks that spoil the aggregate (fast mode treats an intermittent attacker as attacking every round)
CORRUPTING = {
    "label_flip",
    "sign_flip",
    "gaussian_noise",
    "scaled",
    "intermittent",
    "stealthy",
    "colluding",
    "inflated_claim",
}
# where a participant's stake moves as a proposer, and as a voter (the reasons of staking events)
UPDATE_REASONS = {"update_included", "update_condemned", "update_copied", "liveness_proposer", "unrevealed_update"}
BALLOT_REASONS = {"voter_contradicted", "liveness_voter", "unrevealed_ballot"}


class Simulation:
    def __init__(self, config: SimConfig, machine: StateMachine | None = None):
        self.config = config
        self.behaviours = behaviours.assign(
            config.participants, config.attacker_fraction, config.attack, config.attackers_lie, config.seed
        )
        self.malicious = [b.malicious for b in self.behaviours]
        self.keys = [
            Key.from_seed(f"sim-{i}", hashlib.sha256(b"flchain-sim/%d/%d" % (config.seed, i)).digest())
            for i in range(config.participants)
        ]
        self.index = {k.address: i for i, k in enumerate(self.keys)}
        self.by_bech32 = {k.bech32: i for i, k in enumerate(self.keys)}
        self.learner = _TorchLearner(config) if config.mode == "torch" else None
        model = self.learner.initial_model() if self.learner else [("w", np.zeros(4, np.float32))]
        self.params = config.chain_params()
        self.chain = InProcessChain(
            genesis.build(
                {k.address: 0 for k in self.keys},
                {k.address: config.initial_stake for k in self.keys},
                model,
                self.params,
            ),
            CHAIN_ID,
            machine=machine,
            block_label=b"sim-block/%d/" % config.seed,
        )
        # (update corrupt, an honest voter found it harmful), per honest voter and update
        self.verdicts: list[tuple[bool, bool]] = []
        # the work earlier rounds revealed: what a lazy attacker can copy
        self.seen_updates: list[tuple[bytes, list[tuple[str, np.ndarray]]]] = []  # (proposer, update)
        self.seen_ballots: list[behaviours.SeenBallot] = []
        self._sent: dict[int, dict[bytes, list[tuple[str, np.ndarray]]]] = {}  # round -> proposer -> update
        # net stake each participant gained as a proposer and as a voter
        self.role_earnings = {"update": [0] * config.participants, "ballot": [0] * config.participants}
        self.diagnosis = Diagnosis()  # why the run goes as it does (which target it misses, and why)

    def _tx(self, address: bytes, msg) -> bytes:
        return self.chain.sign(self.keys[self.index[address]], msg)

    def state(self):
        return self.chain.state()

    def global_model(self) -> list[tuple[str, np.ndarray]]:
        return tensors.named_floats(self.state().model().tensors, self.params.frac_bits)

    def judged_model(self) -> list[tuple[str, np.ndarray]]:
        """What voters judge updates from: the global model plus the server momentum."""
        model = self.state().model()
        step = artifacts.model_step(model, model.tensors, store=None)  # the simulator's models are inline
        judged = artifacts.judged_model(model.tensors, step, self.params.server_momentum_bps)
        return tensors.named_floats(judged, self.params.frac_bits)

    # --- one round ---------------------------------------------------------------------------
    def _block(self, *txs: bytes) -> None:
        outcome = self.chain.block(*txs)
        for e in outcome.events:
            if e.type in ("rewarded", "slashed"):
                a = dict(e.attributes)
                role = (
                    "update" if a["reason"] in UPDATE_REASONS else "ballot" if a["reason"] in BALLOT_REASONS else None
                )
                participant = self.by_bech32[a["address"]]
                if role:
                    sign = 1 if e.type == "rewarded" else -1
                    self.role_earnings[role][participant] += sign * int(a["amount"])
                if e.type == "slashed":
                    self.diagnosis.lose(participant, a["reason"], int(a["amount"]))

    def _blocks_while(self, round_id: int, phase: int) -> bool:
        """Empty blocks while the round stays in `phase`; whether the round is still going."""
        while self.state().round().id == round_id and self.state().round().phase == phase:
            self._block()
        return self.state().round().id == round_id

    def _salt(self, address: bytes, round_id: int, kind: bytes) -> bytes:
        return hashlib.sha256(
            b"sim-salt/%d/" % self.config.seed + address + struct.pack(">Q", round_id) + kind
        ).digest()

    def play_round(self, index: int) -> RoundRecord | None:
        """Draw, propose (commit, reveal), vote (commit, reveal), tally; None when too few eligible
        participants remain to draw."""
        if self.chain.height == 0 or self.state().round().phase != types_pb2.PHASE_PROPOSE:
            self._block()
        rnd = self.state().round()
        if rnd.phase != types_pb2.PHASE_PROPOSE:
            return None
        global_model = self.global_model()
        updates = {
            a: txb.sealed_update(a, rnd.id, *self._update(a, rnd.id, global_model), self._salt(a, rnd.id, b"update"))
            for a in rnd.proposers
        }
        self._block(*[self._tx(a, s.commit) for a, s in updates.items()])
        # a proposer whose reveal is refused (a free rider's zeros) keeps REVEAL_UPDATES open until its
        # deadline; a round with no update at all is over, and the next one already drawn
        if self._blocks_while(rnd.id, types_pb2.PHASE_PROPOSE):
            self._block(*[self._tx(a, s.reveal) for a, s in updates.items()])
            self._blocks_while(rnd.id, types_pb2.PHASE_REVEAL_UPDATES)
        if self.state().round().id == rnd.id and self.state().round().phase == types_pb2.PHASE_VOTE:
            ballots = self._ballots(rnd.id, self.judged_model())
            self._block(*[self._tx(a, s.commit) for a, s in ballots.items()])
            if self._blocks_while(rnd.id, types_pb2.PHASE_VOTE):
                self._block(*[self._tx(a, s.reveal) for a, s in ballots.items()])
        while self.state().round().id == rnd.id:
            self._block()
        finished = self.state().round_by_id(rnd.id)
        self._remember(finished)
        self.diagnosis.add_round(
            finished,
            {k.address: m for k, m in zip(self.keys, self.malicious)},
            {
                k.address: b.malicious and not isinstance(b, behaviours.HONEST_PROPOSERS)
                for k, b in zip(self.keys, self.behaviours)
            },
        )
        return self._record(index, rnd)

    def _remember(self, finished: types_pb2.Round) -> None:
        """What this round revealed becomes visible to everyone (updates are gone from state after the
        tally, but every node has seen their txs)."""
        self.seen_ballots.extend((b.loss, b.start_loss, list(b.scores), list(b.alignments)) for b in finished.ballots)
        sent = self._sent.pop(finished.id, {})
        self.seen_updates.extend((a, sent[a]) for a in finished.submitted)

    def _update(self, address: bytes, round_id: int, global_model) -> tuple[list, int]:
        i = self.index[address]
        if self.learner is None:
            update, samples = [(n, np.full_like(v, FAST_UPDATE)) for n, v in global_model], 100
        else:
            update, samples = self.learner.update(i, self.behaviours[i], global_model, round_id)
        behaviour = self.behaviours[i]
        samples = behaviour.claim(samples)
        if isinstance(behaviour, behaviours.CopyUpdate):
            rng = np.random.default_rng([self.config.seed, round_id, i])
            update = behaviour.copy([u for a, u in self.seen_updates if a != address], update, rng)
        self._sent.setdefault(round_id, {})[address] = update
        return update, samples

    def _ballots(self, round_id: int, judged_model) -> dict[bytes, txb.Sealed]:
        """Every drawn voter's sealed ballot on the round's updates (truthful evidence, then its
        behaviour's report; a lazy voter copies a ballot it has seen instead)."""
        state = self.state()
        rnd = state.round()
        updates = [state.must_update(round_id, a) for a in rnd.submitted]
        corrupt = [self.behaviours[self.index[a]].name in CORRUPTING for a in rnd.submitted]
        accomplices = [self.malicious[self.index[a]] for a in rnd.submitted]
        named = [(tensors.named_floats(u.tensors, self.params.frac_bits), u.weight) for u in updates]
        ballots = {}
        for voter in rnd.voters:
            i = self.index[voter]
            behaviour = self.behaviours[i]
            if isinstance(behaviour, behaviours.CopyBallot):
                loss_units, start_units, scores_units, aligned_units = behaviour.copy(self.seen_ballots, len(updates))
            else:
                evidence = self._evidence(i, round_id, judged_model, named, corrupt)
                if not self.malicious[i]:
                    harm = -self.params.harm_bps / BPS * evidence.loss
                    self.verdicts.extend((bad, s < harm) for bad, s in zip(corrupt, evidence.scores))
                reported = behaviour.report(evidence.loss, evidence.scores, accomplices)
                aligned = behaviour.align(evidence.alignments, accomplices)
                start_loss = behaviour.report_start(evidence.loss, evidence.start_loss, accomplices)
                loss_units, scores_units = txb.loss_units(evidence.loss), [txb.evidence_units(s) for s in reported]
                start_units, aligned_units = txb.loss_units(start_loss), [txb.alignment_units(a) for a in aligned]
            salt = self._salt(voter, round_id, b"ballot")
            ballots[voter] = txb.sealed_ballot(
                voter, round_id, loss_units, scores_units, salt, aligned_units, start_loss=start_units
            )
        return ballots

    def _evidence(self, i: int, round_id: int, global_model, updates, corrupt) -> Evidence:
        """A voter's leave-one-out evidence: measured in torch mode, drawn in fast mode (a corrupting
        update looks harmful with probability p_detect, a clean one harmless with p_accept; no
        alignment is drawn, as harm beyond condemn_bps condemns whatever the direction)."""
        if self.learner is not None:
            return self.learner.judge(i, round_id, global_model, updates)
        rng = np.random.default_rng([self.config.seed, round_id, i])
        # decisive evidence either way: a corrupting update clearly worth condemning, a clean one clearly helping
        harmful = -(self.params.condemn_bps + self.params.harm_bps) / BPS
        helpful = 2 * self.params.harm_bps / BPS
        chances = [self.config.p_detect if bad else 1 - self.config.p_accept for bad in corrupt]
        scores = [harmful if rng.random() < chance else helpful for chance in chances]
        return Evidence(1.0, scores, [0.0] * len(scores), 1.0)  # no gain: the round-level test never fires

    def _record(self, index: int, rnd: types_pb2.Round) -> RoundRecord:
        state = self.state()
        accuracy = loss = None
        if self.learner is not None:
            accuracy, loss = self.learner.global_score(self.global_model())
        return record_round(
            index,
            state.round_by_id(rnd.id),
            [k.address for k in self.keys],
            {p.address: p for p in state.participants()},
            self.malicious,
            accuracy,
            loss,
        )

    def wealth(self) -> list[int]:
        """Balance + stake + stake still unbonding, per participant."""
        state = self.state()
        unbonding: dict[bytes, int] = {}
        for _, entry in state.unbondings():
            unbonding[entry.address] = unbonding.get(entry.address, 0) + entry.amount
        return [
            state.account(k.address).balance + state.participant(k.address).stake + unbonding.get(k.address, 0)
            for k in self.keys
        ]

    def run(self, on_round: Callable[[RoundRecord], None] | None = None) -> SimResult:
        initial = [self.config.initial_stake] * self.config.participants
        records = []
        for index in range(1, self.config.rounds + 1):
            record = self.play_round(index)
            if record is None:
                break
            records.append(record)
            if on_round:
                on_round(record)
        detect = clean = None
        if self.learner is not None:
            on_corrupt = [harmful for bad, harmful in self.verdicts if bad]
            on_clean = [not harmful for bad, harmful in self.verdicts if not bad]
            detect = float(np.mean(on_corrupt)) if on_corrupt else None
            clean = float(np.mean(on_clean)) if on_clean else None
        state = self.state()
        self.diagnosis.removed(
            [
                i
                for i, k in enumerate(self.keys)
                if not self.malicious[i] and not is_bonded(state.participant(k.address))
            ]
        )
        return SimResult(
            self.config,
            self.malicious,
            records,
            initial,
            self.wealth(),
            detect,
            clean,
            self.role_earnings,
            self.diagnosis,
        )


class _TorchLearner:
    """The ML half of the torch mode: shards of the digits, local training, judgement on each voter's shard."""

    def __init__(self, config: SimConfig):
        from participant.ml import data, models  # torch is only needed in this mode

        self.config = config
        self.models = models
        self.shards, self.global_test = data.partition(config.participants, alpha=config.alpha, seed=config.seed)

    def initial_model(self):
        return self.models.initial_params(self.config.model, self.config.seed)

    def update(self, i: int, behaviour, global_model, round_id: int):
        from participant.digits import make_update

        update = make_update(
            behaviour,
            self.config.model,
            global_model,
            self.shards[i],
            self.config.train,
            seed=training_seed(self.config.seed, round_id, i),
        )
        return update, len(self.shards[i].train)

    def judge(self, i: int, round_id: int, global_model, updates):
        from participant.digits import DigitsLearner
        from participant.duties import judge, part_for

        voter, part = DigitsLearner(self.shards[i], kind=self.config.model), part_for(len(updates), round_id)
        return judge(lambda params: voter.loss(params, part), global_model, updates)

    def global_score(self, model) -> tuple[float, float]:
        from participant.ml.training import evaluate

        return evaluate(self.config.model, model, self.global_test)
