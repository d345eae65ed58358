"""One experiment's settings: the federation, the attack, the data split and the chain's params."""

from dataclasses import dataclass, field, fields

from abci_app import genesis
from flchain.v1 import types_pb2
from participant.ml.config import TrainConfig

CHAIN_DEFAULTS = genesis.default_params()  # experiments start from the chain's own defaults
REFERENCE = "fedavg_no_attack"  # the baseline of plain FedAvg with no attacker: what a defence should reach
# Plain FedAvg that draws its proposers among the honest participants alone: what a defence that kept
# every attacker out from the first round would reach (their shards' data is lost with them).
HONEST_ALONE = "fedavg_honest_alone"


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
    harm_bps: int = CHAIN_DEFAULTS.harm_bps
    condemn_bps: int = CHAIN_DEFAULTS.condemn_bps
    aligned_bps: int = CHAIN_DEFAULTS.aligned_bps
    include_bps: int = CHAIN_DEFAULTS.include_bps
    exclude_bps: int = CHAIN_DEFAULTS.exclude_bps
    full_credit_bps: int = CHAIN_DEFAULTS.full_credit_bps
    norm_bound_bps: int = CHAIN_DEFAULTS.norm_bound_bps
    norm_window_rounds: int = CHAIN_DEFAULTS.norm_window_rounds
    sample_bound_bps: int = CHAIN_DEFAULTS.sample_bound_bps
    server_momentum_bps: int = CHAIN_DEFAULTS.server_momentum_bps
    copy_cosine_bps: int = CHAIN_DEFAULTS.copy_cosine_bps
    copy_window_rounds: int = CHAIN_DEFAULTS.copy_window_rounds
    # fast mode: chance that an honest voter finds a corrupting update clearly harmful, and a clean one
    # clearly helpful (torch runs, IID, 30% sign_flip: 0.97 and 0.85 per update and honest voter)
    p_detect: float = 0.95
    p_accept: float = 0.85
    train: TrainConfig = field(default_factory=TrainConfig)

    def chain_params(self) -> types_pb2.Params:
        """The chain's params for this experiment (every simulated participant answers at once, so
        phases end on their last tx, long before any deadline)."""
        params = genesis.default_params()
        # set one by one: MergeFrom would skip a 0, proto3's "unset"
        params.min_stake = max(1, int(self.threshold * self.initial_stake))
        params.min_participants = min(self.participants, 3)
        for name in CHAIN_FIELDS:
            setattr(params, name, getattr(self, name))
        params.max_tx_bytes = 4 << 20
        if self.mode == "fast":  # its stand-in updates are all the same step: no copy rule can tell
            params.copy_cosine_bps = 0
        return params


# The settings above that are chain params of the same name, copied into chain_params() as they are.
CHAIN_FIELDS = tuple(f.name for f in fields(SimConfig) if f.name in types_pb2.Params.DESCRIPTOR.fields_by_name)
