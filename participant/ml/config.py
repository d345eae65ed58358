"""How a participant trains locally, and its seeds (kept apart from training.py so that it loads without torch)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    # FedProx's proximal term, mu/2 * ||w - w_global||^2: keeps the step of a skewed (non-IID) shard
    # near the global model, so it does not undo what the other shards taught. 0: plain SGD.
    proximal_mu: float = 0.0
    # Local SGD steps at most. None: `epochs` epochs of the federation's typical shard (the mean
    # train split, where the learner knows it), so that a large one-sided (non-IID) shard does not
    # take many more steps than the others and drift its update toward its own classes, away from
    # what the federation needs (FedNova's "objective inconsistency"). 0: every epoch in full.
    max_steps: int | None = None

    def step_cap(self, typical_train: int) -> int | None:
        """The most SGD steps one update takes (None: no cap), for a federation whose typical shard
        trains on typical_train samples (0: unknown)."""
        if self.max_steps is not None:
            return self.max_steps or None
        if typical_train <= 0:
            return None
        return self.epochs * -(-typical_train // self.batch_size)


def default_training(kind: str) -> TrainConfig:
    """The wide model's output layer sums 133k hidden units: a 0.003 step keeps its SGD stable (at 0.1 it
    diverges; at 0.01 a shard's first epoch raises the others' loss)."""
    return TrainConfig(lr=0.003) if kind == "wide" else TrainConfig()


def training_seed(seed: int, round_id: int, participant: int = 0) -> int:
    """The seed of one participant's local training in one round: a rerun trains the very same update
    (so a restarted participant signs the same bytes again, and experiments reproduce)."""
    return seed * 1_000_003 + round_id * 1_009 + participant
