"""Federations without the chain's defence, for comparison under the same attack and data.

Each round draws the same number of proposers from everyone (attackers are never removed) and
aggregates their updates with plain FedAvg, a coordinate-wise median, or a trimmed mean. The
reference is plain FedAvg of the same federation with no attacker at all: what a defence should
reach on that data split. FedAvg among the honest participants alone is what a perfect defence
reaches: the attackers' shards are lost with them.
"""

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from experiments.config import HONEST_ALONE, REFERENCE, SimConfig
from participant import behaviours
from participant.digits import make_update
from participant.ml import data, models
from participant.ml.config import training_seed
from participant.ml.training import evaluate
from participant.params import add

AGGREGATORS = ("fedavg", "median", "trimmed_mean")


def aggregate(kind: str, updates: list[list[tuple[str, np.ndarray]]], weights: list[int]):
    names = [n for n, _ in updates[0]]
    out = []
    for j, name in enumerate(names):
        stack = np.stack([u[j][1] for u in updates])
        if kind == "fedavg":
            value = np.tensordot(np.asarray(weights, np.float64) / sum(weights), stack, axes=1)
        elif kind == "median":
            value = np.median(stack, axis=0)
        else:  # trimmed mean: drop the largest and smallest value per coordinate when there are 3+
            k = 1 if len(updates) >= 3 else 0
            value = np.sort(stack, axis=0)[k : len(updates) - k].mean(axis=0)
        out.append((name, value.astype(np.float32)))
    return out


def run_baselines(config: SimConfig, names: Sequence[str] = ("fedavg", "median", REFERENCE)) -> dict[str, list[float]]:
    """Accuracy per round of the same federation without the chain's defence, per aggregator."""
    return {name: run_baseline(config, name) for name in names}


def run_baseline(config: SimConfig, aggregator: str) -> list[float]:
    """Global test accuracy after each round (aggregator: one of AGGREGATORS, REFERENCE or HONEST_ALONE)."""
    if aggregator == REFERENCE:
        config, aggregator = replace(config, attacker_fraction=0.0), "fedavg"
    behaviour = behaviours.assign(config.participants, config.attacker_fraction, config.attack, seed=config.seed)
    eligible = np.arange(config.participants)  # who may be drawn as proposer
    if aggregator == HONEST_ALONE:
        eligible, aggregator = np.array([i for i, b in enumerate(behaviour) if not b.malicious]), "fedavg"
    shards, global_test = data.partition(config.participants, alpha=config.alpha, seed=config.seed)
    model = models.initial_params(config.model, config.seed)
    draw = np.random.default_rng(config.seed + 1)
    accuracy = []
    for round_id in range(1, config.rounds + 1):
        chosen = draw.choice(eligible, config.num_proposers, replace=False)
        updates = [
            make_update(
                behaviour[i],
                config.model,
                model,
                shards[i],
                config.train,
                seed=training_seed(config.seed, round_id, int(i)),
            )
            for i in chosen
        ]
        model = add(model, aggregate(aggregator, updates, [len(shards[i].train) for i in chosen]))
        accuracy.append(evaluate(config.model, model, global_test)[0])
    return accuracy
