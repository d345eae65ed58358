"""One simulated federation: participants with behaviours drive the chain's StateMachine in process.

Every action is a real signed tx in a real block, so stakes, draws, slashes and the model evolve
exactly as on chain; only CometBFT and the sockets are left out. Two ways to decide votes:
  torch: proposers train on their shard of the digits, voters evaluate the candidate on theirs;
  fast:  no ML, for large sweeps. A candidate that contains a corrupting attacker is visibly bad
         with probability p_detect, once for all voters (they judge the same candidate); each honest
         voter then judges right with probability p_accept. Both rates are measured by torch runs.
"""
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from abci_app import genesis, tensors
from abci_app.machine import BlockOutcome, StateMachine
from abci_app.store import MemoryStore
from client import behaviours
from client import tx as txb
from client.keys import Key
from client.ml.config import TrainConfig
from flchain.v1 import types_pb2

CHAIN_ID = "flchain-sim"
FAST_UPDATE = 2.0 ** -10  # fast mode's stand-in update: any non-zero step the chain accepts
CORRUPTING = {"label_flip", "sign_flip", "gaussian_noise", "scaled"}  # attacks that spoil the aggregate
CHAIN_DEFAULTS = genesis.default_params()  # experiments start from the chain's own defaults


@dataclass
class SimConfig:
    participants: int = 20
    attacker_fraction: float = 0.3
    attack: str = "sign_flip"
    attackers_lie: bool = True
    rounds: int = 30
    mode: str = "torch"
    model: str = "mlp"
    alpha: float | None = None  # None: IID shards; else Dirichlet non-IID
    seed: int = 0
    initial_stake: int = genesis.STANDARD_BOND
    threshold: float = CHAIN_DEFAULTS.min_stake / genesis.STANDARD_BOND  # min_stake / initial stake
    num_proposers: int = CHAIN_DEFAULTS.num_proposers
    num_voters: int = CHAIN_DEFAULTS.num_voters
    proposer_reward_bps: int = CHAIN_DEFAULTS.proposer_reward_bps
    proposer_slash_bps: int = CHAIN_DEFAULTS.proposer_slash_bps
    voter_reward_bps: int = CHAIN_DEFAULTS.voter_reward_bps
    voter_slash_bps: int = CHAIN_DEFAULTS.voter_slash_bps
    liveness_slash_bps: int = CHAIN_DEFAULTS.liveness_slash_bps
    quorum_bps: int = CHAIN_DEFAULTS.quorum_bps
    p_detect: float = 0.9  # torch runs measured 0.86-1.0 for sign_flip and scaled, ~0.2 for label_flip and noise
    p_accept: float = 0.95
    train: TrainConfig = field(default_factory=TrainConfig)

    def chain_params(self) -> types_pb2.Params:
        """The chain's params for this experiment; phases last one block (the simulator never waits)."""
        params = genesis.default_params()
        params.MergeFrom(types_pb2.Params(
            min_stake=max(1, int(self.threshold * self.initial_stake)), num_proposers=self.num_proposers,
            num_voters=self.num_voters, min_participants=min(self.participants, 3),
            select_blocks=1, propose_blocks=1, vote_blocks=1,
            proposer_reward_bps=self.proposer_reward_bps, proposer_slash_bps=self.proposer_slash_bps,
            voter_reward_bps=self.voter_reward_bps, voter_slash_bps=self.voter_slash_bps,
            liveness_slash_bps=self.liveness_slash_bps, quorum_bps=self.quorum_bps))
        params.max_tx_bytes = 4 << 20
        return params


@dataclass
class RoundRecord:
    index: int  # 1 for the first tallied round
    round_id: int
    outcome: str
    malicious_proposers: int
    attackers_bonded: int
    honest_bonded: int
    stakes: list[int]  # per participant, in participant order
    accuracy: float | None = None
    loss: float | None = None


@dataclass
class SimResult:
    config: SimConfig
    malicious: list[bool]
    records: list[RoundRecord]
    initial_wealth: list[int]
    final_wealth: list[int]
    detect_rate: float | None  # torch mode: share of corrupt candidates most honest verdicts rejected
    clean_accept_rate: float | None  # torch mode: share of truthful verdicts accepting a clean candidate

    @property
    def rounds_until_attackers_removed(self) -> int | None:
        if not any(self.malicious):
            return 0
        return next((r.index for r in self.records if r.attackers_bonded == 0), None)

    def _mean_return(self, malicious: bool) -> float | None:
        idx = [i for i, m in enumerate(self.malicious) if m == malicious]
        if not idx:
            return None
        return float(np.mean([(self.final_wealth[i] - self.initial_wealth[i]) / self.config.initial_stake
                              for i in idx]))

    @property
    def honest_removed_share(self) -> float | None:
        """Share of honest participants no longer bonded at the end: the defence's collateral."""
        honest = self.malicious.count(False)
        if not honest or not self.records:
            return None
        return 1 - self.records[-1].honest_bonded / honest

    @property
    def honest_return(self) -> float | None:
        return self._mean_return(False)

    @property
    def attacker_return(self) -> float | None:
        return self._mean_return(True)

    @property
    def final_accuracy(self) -> float | None:
        return self.records[-1].accuracy if self.records else None


class Simulation:
    def __init__(self, config: SimConfig, machine: StateMachine | None = None):
        self.config = config
        self.behaviours = behaviours.assign(config.participants, config.attacker_fraction, config.attack,
                                            config.attackers_lie, config.seed)
        self.malicious = [b.malicious for b in self.behaviours]
        self.keys = [Key.from_seed(f"sim-{i}", hashlib.sha256(b"flchain-sim/%d/%d" % (config.seed, i)).digest())
                     for i in range(config.participants)]
        self.index = {k.address: i for i, k in enumerate(self.keys)}
        self.nonces = [0] * config.participants
        self.learner = _TorchLearner(config) if config.mode == "torch" else None
        model = self.learner.initial_model() if self.learner else [("w", np.zeros(4, np.float32))]
        self.params = config.chain_params()
        self.machine = machine or StateMachine(MemoryStore())
        self.genesis = genesis.build({k.address: 0 for k in self.keys},
                                     {k.address: config.initial_stake for k in self.keys}, model, self.params)
        self.machine.init_chain(self.genesis, CHAIN_ID)
        self.height = 0
        self.blocks: list[tuple[int, bytes, list[bytes]]] = []  # everything needed to replay the chain
        self.verdicts: list[tuple[bool, list[bool]]] = []  # (candidate corrupt, truthful accepts) per round

    # --- chain plumbing ----------------------------------------------------------------------
    def _block(self, txs: list[bytes]) -> BlockOutcome:
        self.height += 1
        block_hash = hashlib.sha256(b"sim-block/%d/%d" % (self.config.seed, self.height)).digest()
        self.blocks.append((self.height, block_hash, txs))
        outcome = self.machine.finalize_block(txs, self.height, block_hash)
        self.machine.commit()
        return outcome

    def _tx(self, address: bytes, msg) -> bytes:
        i = self.index[address]
        raw = txb.sign_tx(self.keys[i], CHAIN_ID, self.nonces[i], [msg])
        self.nonces[i] += 1
        return raw

    def state(self):
        return self.machine.committed_state()

    def global_model(self) -> list[tuple[str, np.ndarray]]:
        return tensors.named_floats(self.state().model().tensors, self.params.frac_bits)

    # --- one round ---------------------------------------------------------------------------
    def play_round(self, index: int) -> RoundRecord | None:
        """Draw, propose, vote, tally; None when too few eligible participants remain to draw."""
        if self.height == 0 or self.state().round().phase != types_pb2.PHASE_PROPOSE:
            self._block([])
        rnd = self.state().round()
        if rnd.phase != types_pb2.PHASE_PROPOSE:
            return None
        global_model = self.global_model()
        updates = [self._tx(a, txb.submit_update(rnd.id, *self._update(a, rnd.id, global_model)))
                   for a in rnd.proposers]
        self._block(updates)
        while self.state().round().phase == types_pb2.PHASE_PROPOSE:
            self._block([])
        if self.state().round().phase == types_pb2.PHASE_VOTE:
            candidate = self.state().candidate()
            corrupt = any(self.behaviours[self.index[a]].name in CORRUPTING for a in candidate.contributors)
            delta = tensors.named_floats(candidate.delta, self.params.frac_bits)
            visibly_bad = corrupt and np.random.default_rng([self.config.seed, rnd.id]).random() < self.config.p_detect
            votes, truths = [], []
            for a in rnd.voters:
                truth, score = self._judge(a, rnd.id, global_model, delta, visibly_bad)
                truths.append(truth)
                votes.append(self._tx(a, txb.vote(rnd.id, self.behaviours[self.index[a]].vote(truth),
                                                  int(score * 10_000))))
            self.verdicts.append((corrupt, truths))
            self._block(votes)
        while self.state().round().id == rnd.id:
            self._block([])
        return self._record(index, rnd)

    def _update(self, address: bytes, round_id: int, global_model) -> tuple[list, int]:
        i = self.index[address]
        if self.learner is None:
            return [(n, np.full_like(v, FAST_UPDATE)) for n, v in global_model], 100
        return self.learner.update(i, self.behaviours[i], global_model, round_id)

    def _judge(self, address: bytes, round_id: int, global_model, delta, visibly_bad: bool) -> tuple[bool, float]:
        """A truthful verdict: measured in torch mode, drawn in fast mode."""
        i = self.index[address]
        if self.learner is not None:
            return self.learner.judge(i, global_model, delta)
        right = np.random.default_rng([self.config.seed, round_id, i]).random() < self.config.p_accept
        return bool(right != visibly_bad), 0.0

    def _record(self, index: int, rnd: types_pb2.Round) -> RoundRecord:
        state = self.state()
        finished = state.round_by_id(rnd.id)
        participants = [state.participant(k.address) for k in self.keys]
        bonded = [p.status == types_pb2.PARTICIPANT_STATUS_BONDED for p in participants]
        record = RoundRecord(
            index=index, round_id=rnd.id,
            outcome=types_pb2.Outcome.Name(finished.outcome).removeprefix("OUTCOME_").lower(),
            malicious_proposers=sum(self.malicious[self.index[a]] for a in finished.submitted),
            attackers_bonded=sum(b and m for b, m in zip(bonded, self.malicious)),
            honest_bonded=sum(b and not m for b, m in zip(bonded, self.malicious)),
            stakes=[p.stake for p in participants])
        if self.learner is not None:
            record.accuracy, record.loss = self.learner.global_score(self.global_model())
        return record

    def wealth(self) -> list[int]:
        """Balance + stake + stake still unbonding, per participant."""
        state = self.state()
        unbonding = {}
        for _, entry in state.unbondings():
            unbonding[entry.address] = unbonding.get(entry.address, 0) + entry.amount
        return [state.account(k.address).balance + state.participant(k.address).stake + unbonding.get(k.address, 0)
                for k in self.keys]

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
            corrupt = [truths for bad, truths in self.verdicts if bad]
            clean_votes = [t for bad, truths in self.verdicts if not bad for t in truths]
            detect = float(np.mean([sum(truths) * 2 < len(truths) for truths in corrupt])) if corrupt else None
            clean = float(np.mean(clean_votes)) if clean_votes else None
        return SimResult(self.config, self.malicious, records, initial, self.wealth(), detect, clean)


class _TorchLearner:
    """The ML half of the torch mode: shards of the digits, local training, held-out judgement."""

    def __init__(self, config: SimConfig):
        from client.ml import data, models  # torch is only needed in this mode
        self.config = config
        self.models = models
        self.shards, self.global_test = data.partition(config.participants, alpha=config.alpha, seed=config.seed)

    def initial_model(self):
        return self.models.initial_params(self.config.model, self.config.seed)

    def update(self, i: int, behaviour, global_model, round_id: int):
        from client.participant import make_update
        update = make_update(behaviour, self.config.model, global_model, self.shards[i], self.config.train,
                             seed=self.config.seed * 1_000_003 + round_id * 1_009 + i)
        return update, len(self.shards[i].train)

    def judge(self, i: int, global_model, delta) -> tuple[bool, float]:
        from client.participant import judge
        return judge(self.config.model, global_model, delta, self.shards[i])

    def global_score(self, model) -> tuple[float, float]:
        from client.ml.training import evaluate
        return evaluate(self.config.model, model, self.global_test)
