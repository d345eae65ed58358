"""How a participant trains locally (kept apart from training.py so that it loads without torch)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
