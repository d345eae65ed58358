"""Real data that ships inside an installed package (scikit-learn's 8x8 digits), split among clients.

Each client keeps its own shard and splits it into train and held-out test; a separate global
test set (never given to any client) measures the federation's model for reports.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

NUM_CLASSES = 10
NUM_FEATURES = 64


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # float32, (n, 64), scaled to [0, 1]
    y: np.ndarray  # int64, (n,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class ClientData:
    train: Split
    test: Split
    typical_train: int = 0  # the mean train split of the federation it was partitioned from (0: unknown)

    @cached_property
    def everything(self) -> Split:
        """Every sample the client holds, train and test: what it measures others' updates on as a
        voter (none of it trained them, and four times the held-out split steadies the evidence)."""
        return Split(np.concatenate([self.train.x, self.test.x]), np.concatenate([self.train.y, self.test.y]))


def load() -> Split:
    from sklearn.datasets import load_digits  # imported here: validators load this package without sklearn

    digits = load_digits()
    return Split((digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64))


def _take(data: Split, idx: np.ndarray) -> Split:
    return Split(data.x[idx], data.y[idx])


def partition(
    num_clients: int,
    *,
    alpha: float | None = None,
    global_test_fraction: float = 0.2,
    client_test_fraction: float = 0.25,
    seed: int = 0,
) -> tuple[list[ClientData], Split]:
    """Shards for num_clients plus the global test set.

    alpha=None: IID (a uniform shuffle). alpha>0: non-IID, each class spread over clients by a
    Dirichlet(alpha) draw (smaller alpha, more skew). Every client gets at least 4 samples.
    """
    data = load()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    n_test = int(len(order) * global_test_fraction)
    global_test, pool = _take(data, order[:n_test]), order[n_test:]
    if alpha is None:
        shards = np.array_split(pool, num_clients)
    else:
        shards = _dirichlet_shards(data.y, pool, num_clients, alpha, rng)
    splits = []  # (train, test) per client
    for shard in shards:
        shard = rng.permutation(shard)
        n_client_test = max(1, int(len(shard) * client_test_fraction))
        splits.append((_take(data, shard[n_client_test:]), _take(data, shard[:n_client_test])))
    typical = sum(len(train) for train, _ in splits) // num_clients
    return [ClientData(train, test, typical) for train, test in splits], global_test


def _dirichlet_shards(
    labels: np.ndarray, pool: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator, min_size: int = 4
) -> list[np.ndarray]:
    for _ in range(100):  # redraw until no client is left (almost) empty
        shards: list[list[int]] = [[] for _ in range(num_clients)]
        for label in range(NUM_CLASSES):
            members = rng.permutation(pool[labels[pool] == label])
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for client, part in enumerate(np.split(members, cuts)):
                shards[client].extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.array(s) for s in shards]
    raise ValueError(f"alpha={alpha} leaves a client with fewer than {min_size} samples; raise alpha")
