"""Any Flower NumPyClient as a flchain participant: `fit` when drawn as proposer, `evaluate` when
drawn as voter (once per candidate model: proposers + 1 calls), `get_parameters` for the genesis
model. A Flower user keeps its client and changes only how it is started.

The chain's model is a list of named arrays; a NumPyClient speaks unnamed lists in one fixed
order, so names travel beside the arrays (param0, param1, ... unless the caller gives its own).
Nothing here imports flwr: a subclass of flwr.client.NumPyClient and any object with the same
three methods work alike.
"""

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from participant.learner import Part
from participant.params import Params

Config = dict[str, bool | bytes | float | int | str]  # Flower's config: scalars by name


class NumPyClientLike(Protocol):
    def get_parameters(self, config: Config) -> list[np.ndarray]: ...

    def fit(self, parameters: list[np.ndarray], config: Config) -> tuple[list[np.ndarray], int, dict[str, Any]]: ...

    def evaluate(self, parameters: list[np.ndarray], config: Config) -> tuple[float, int, dict[str, Any]]: ...


class ClientError(ValueError):
    """The client answered something the chain cannot take (wrong shapes, no samples, NaN)."""


def arrays(params: Params) -> list[np.ndarray]:
    return [values for _, values in params]


def genesis_model(client: NumPyClientLike, names: Sequence[str] | None = None) -> Params:
    """The chain's initial model from the client's own parameters (names and shapes)."""
    values = [np.asarray(v, dtype=np.float32) for v in client.get_parameters({})]
    names = list(names) if names is not None else [f"param{i}" for i in range(len(values))]
    if len(names) != len(values):
        raise ClientError(f"{len(names)} names for {len(values)} arrays")
    return list(zip(names, values))


@dataclass
class FlowerLearner:
    client: NumPyClientLike
    config: Config = field(default_factory=dict)  # passed to fit and evaluate, beside the round

    def train(self, global_params: Params, round_id: int) -> tuple[Params, int]:
        new, num_examples, _ = self.client.fit(arrays(global_params), {**self.config, "round": round_id})
        new = self._checked(new, global_params, "fit")
        if int(num_examples) < 1:
            raise ClientError(f"fit reported {num_examples} examples; FedAvg weighs an update by them")
        return [(name, n - g) for (name, g), n in zip(global_params, new)], int(num_examples)

    def loss(self, params: Params, part: Part | None = None) -> float:
        """The client's evaluate loss. A part is passed in the config (flchain_part_period,
        flchain_part_phase: leave out every period-th evaluation sample, from phase); a client that
        ignores it measures all its data, which costs more but judges the same way."""
        config = dict(self.config)
        if part is not None:
            config.update(flchain_part_period=part.period, flchain_part_phase=part.phase)
        loss, _, _ = self.client.evaluate(arrays(params), config)
        if not np.isfinite(loss):
            raise ClientError(f"evaluate returned a loss of {loss}")
        return float(loss)

    def describe(self) -> str:
        return f"Flower client {type(self.client).__name__}"

    @staticmethod
    def _checked(values: Sequence[np.ndarray], like: Params, method: str) -> list[np.ndarray]:
        out = [np.asarray(v, dtype=np.float32) for v in values]
        got, expected = [v.shape for v in out], [v.shape for _, v in like]
        if got != expected:
            raise ClientError(f"{method} returned arrays of shapes {got}; the global model has {expected}")
        if not all(np.isfinite(v).all() for v in out):
            raise ClientError(f"{method} returned NaN or infinite weights")
        return out


ClientFactory = Callable[[int, int], NumPyClientLike]


def load_factory(spec: str) -> ClientFactory:
    """'package.module:client_fn' -> client_fn(partition_id, num_partitions), the Flower convention
    (Context.node_config's partition-id and num-partitions) for which share of the data a client holds."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:FACTORY (e.g. examples.breast_cancer:client_fn), got {spec!r}")
    if os.getcwd() not in sys.path:  # the user's own modules, found from where they run, as `python -m` does
        sys.path.insert(0, os.getcwd())
    factory = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise ValueError(f"{spec}: {attr} is not a callable in {module_name}")
    return factory
