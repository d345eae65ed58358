"""Image classification as a Flower client: a small CNN on scikit-learn's 8x8 digits, one shard per
partition (the demo's task, written the way a Flower user writes a client).

    flchain federate --client examples.digits_cnn:client_fn

A plain Flower NumPyClient (a subclass of flwr's when flwr is installed); nothing in it knows about
the chain.
"""

import numpy as np
import torch
from torch import nn

from participant.ml.data import partition

try:
    from flwr.client import NumPyClient
except ImportError:  # flwr is optional: flchain needs only the three methods below
    NumPyClient = object  # type: ignore[assignment,misc]


class CNN(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.fc = nn.Linear(channels * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x.view(-1, 1, 8, 8)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def get_weights(net: nn.Module) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for t in net.state_dict().values()]


def set_weights(net: nn.Module, weights: list[np.ndarray]) -> None:
    net.load_state_dict({k: torch.from_numpy(np.asarray(w)) for k, w in zip(net.state_dict(), weights)})


class DigitsClient(NumPyClient):
    def __init__(self, partition_id: int, num_partitions: int, epochs: int = 3, lr: float = 0.1):
        shards, _ = partition(num_partitions, seed=0)
        self.data = shards[partition_id]
        self.partition_id, self.epochs, self.lr = partition_id, epochs, lr

    def get_parameters(self, config):
        torch.manual_seed(0)
        return get_weights(CNN())

    def fit(self, parameters, config):
        net = CNN()
        set_weights(net, parameters)
        torch.manual_seed(1000 * int(config.get("round", 0)) + self.partition_id)
        optimizer = torch.optim.SGD(net.parameters(), lr=self.lr)
        x, y = torch.from_numpy(self.data.train.x), torch.from_numpy(self.data.train.y)
        for _ in range(self.epochs):
            for batch in torch.randperm(len(y)).split(16):
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
                optimizer.step()
        return get_weights(net), len(y), {}

    @torch.no_grad()
    def evaluate(self, parameters, config):
        net = CNN()
        set_weights(net, parameters)
        logits = net(torch.from_numpy(self.data.test.x))
        y = torch.from_numpy(self.data.test.y)
        loss = float(nn.functional.cross_entropy(logits, y))
        return loss, len(y), {"accuracy": float((logits.argmax(1) == y).float().mean())}


def client_fn(partition_id: int, num_partitions: int) -> DigitsClient:
    return DigitsClient(partition_id, num_partitions)
