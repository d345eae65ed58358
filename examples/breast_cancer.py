"""A tabular medical task as a Flower client: logistic regression on scikit-learn's breast-cancer
set (569 tumours, 30 measurements, malignant or benign), one hospital per partition.

    flchain federate --client examples.breast_cancer:client_fn

It is a plain Flower NumPyClient (a subclass of flwr's when flwr is installed); nothing in it knows
about the chain. Every hospital scales the measurements alike (log, then a reference mean and
spread agreed beforehand; here those of the public dataset), so the shared model reads the same
features everywhere.
"""

import numpy as np
import torch
from torch import nn

try:
    from flwr.client import NumPyClient
except ImportError:  # flwr is optional: flchain needs only the three methods below
    NumPyClient = object  # type: ignore[assignment,misc]

NUM_FEATURES, NUM_CLASSES = 30, 2


def load_partition(partition_id: int, num_partitions: int, seed: int = 0):
    """(x_train, y_train, x_test, y_test) of one hospital: an IID share, a quarter of it held out."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    logged = np.log1p(data.data)
    x = ((logged - logged.mean(0)) / logged.std(0)).astype(np.float32)  # the agreed reference scaling
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    share = np.array_split(order, num_partitions)[partition_id]
    held_out = max(1, len(share) // 4)
    return x[share[held_out:]], y[share[held_out:]], x[share[:held_out]], y[share[:held_out]]


def model() -> nn.Module:
    return nn.Linear(NUM_FEATURES, NUM_CLASSES)


def get_weights(net: nn.Module) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for t in net.state_dict().values()]


def set_weights(net: nn.Module, weights: list[np.ndarray]) -> None:
    net.load_state_dict({k: torch.from_numpy(np.asarray(w)) for k, w in zip(net.state_dict(), weights)})


class BreastCancerClient(NumPyClient):
    def __init__(self, partition_id: int, num_partitions: int, epochs: int = 5, lr: float = 0.1):
        self.x, self.y, self.x_test, self.y_test = load_partition(partition_id, num_partitions)
        self.partition_id, self.epochs, self.lr = partition_id, epochs, lr

    def get_parameters(self, config):
        torch.manual_seed(0)
        return get_weights(model())

    def fit(self, parameters, config):
        net = model()
        set_weights(net, parameters)
        torch.manual_seed(1000 * int(config.get("round", 0)) + self.partition_id)  # a rerun trains the same
        optimizer = torch.optim.SGD(net.parameters(), lr=self.lr)
        x, y = torch.from_numpy(self.x), torch.from_numpy(self.y)
        for _ in range(self.epochs):
            for batch in torch.randperm(len(y)).split(16):
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
                optimizer.step()
        return get_weights(net), len(self.y), {}

    @torch.no_grad()
    def evaluate(self, parameters, config):
        net = model()
        set_weights(net, parameters)
        logits = net(torch.from_numpy(self.x_test))
        y = torch.from_numpy(self.y_test)
        loss = float(nn.functional.cross_entropy(logits, y))
        return loss, len(self.y_test), {"accuracy": float((logits.argmax(1) == y).float().mean())}


def client_fn(partition_id: int, num_partitions: int) -> BreastCancerClient:
    return BreastCancerClient(partition_id, num_partitions)
