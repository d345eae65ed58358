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
    # Local SGD steps at most: 5 epochs of an IID shard of the digits (54 samples, batches of 16). A
    # large one-sided (non-IID) shard would otherwise take many more steps and drift its update
    # toward its own classes, away from what the federation needs (FedNova's "objective
    # inconsistency"). 0: every epoch in full.
    max_steps: int = 20


def default_training(kind: str) -> TrainConfig:
    """The wide model's output layer sums 133k hidden units: a 0.003 step keeps its SGD stable (at 0.1 it
    diverges; at 0.01 a shard's first epoch raises the others' loss)."""
    return TrainConfig(lr=0.003) if kind == "wide" else TrainConfig()


def training_seed(seed: int, round_id: int, participant: int = 0) -> int:
    """The seed of one participant's local training in one round: a rerun trains the very same update
    (so a restarted participant signs the same bytes again, and experiments reproduce)."""
    return seed * 1_000_003 + round_id * 1_009 + participant
