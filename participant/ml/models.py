"""Small torch models for 8x8 digits, and the conversion between a model and named numpy arrays.

`initial_params` is the genesis model of the demo federation and of `flchain localnet up`: its names and
shapes are what the chain's global model carries.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from participant.ml.data import NUM_CLASSES, NUM_FEATURES
from participant.params import Params


class MLP(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.fc1 = nn.Linear(NUM_FEATURES, hidden)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class SmallCNN(nn.Module):
    """Two 3x3 convolutions over the 8x8 image, then a linear classifier."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.fc = nn.Linear(channels * 4 * 4, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)
        x = torch.relu(self.conv1(x))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def wide_mlp() -> MLP:
    """A 10M-parameter MLP (75 * hidden + 10 parameters): too large for a tx, so federated by
    reference through an object store; the size the large-model tests and benchmarks start at."""
    return MLP(hidden=133_400)


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": MLP, "cnn": SmallCNN, "wide": wide_mlp}


def build(kind: str) -> nn.Module:
    return MODELS[kind]()


def get_params(model: nn.Module) -> Params:
    return [(name, t.detach().cpu().numpy().astype(np.float32).copy()) for name, t in model.state_dict().items()]


def set_params(model: nn.Module, params: Params) -> None:
    model.load_state_dict({name: torch.from_numpy(np.asarray(values, dtype=np.float32)) for name, values in params})


def initial_params(kind: str, seed: int = 0) -> Params:
    """The genesis model: torch's default initialisation from a fixed seed."""
    torch.manual_seed(seed)
    return get_params(build(kind))
