"""Local training and evaluation: what a participant does with its own data."""

from collections.abc import Iterator
from itertools import islice

import torch
from torch import nn

from participant.ml.config import TrainConfig
from participant.ml.data import Split
from participant.ml.models import build, get_params, set_params
from participant.params import Params


def train(kind: str, start: Params, data: Split, config: TrainConfig, seed: int, typical_train: int = 0) -> Params:
    """SGD from the global model on the client's train split, at most config.step_cap(typical_train)
    steps; returns the new parameters."""
    torch.manual_seed(seed)
    model = build(kind)
    set_params(model, start)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    generator = torch.Generator().manual_seed(seed)
    anchor = [p.detach().clone() for p in model.parameters()]
    model.train()
    for batch in islice(_batches(len(y), config, generator), config.step_cap(typical_train)):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        if config.proximal_mu:
            drift = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            loss = loss + config.proximal_mu / 2 * drift
        loss.backward()
        optimizer.step()
    return get_params(model)


def _batches(n: int, config: TrainConfig, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Minibatch indices, epoch after epoch, each epoch in a fresh order."""
    for _ in range(config.epochs):
        yield from torch.randperm(n, generator=generator).split(config.batch_size)


@torch.no_grad()
def evaluate(kind: str, params: Params, data: Split) -> tuple[float, float]:
    """(accuracy, mean cross-entropy loss) on a split."""
    model = build(kind)
    set_params(model, params)
    model.eval()
    logits = model(torch.from_numpy(data.x))
    y = torch.from_numpy(data.y)
    return float((logits.argmax(1) == y).float().mean()), float(nn.functional.cross_entropy(logits, y))
