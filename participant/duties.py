"""What a participant computes when drawn: an update as proposer, a judgement as voter."""

import numpy as np

from participant.behaviours import Behaviour
from participant.ml.data import ClientData
from participant.ml.models import Params
from participant.ml.training import TrainConfig, add, delta, evaluate, train

LOSS_MARGIN = 0.05  # a candidate may cost this much held-out loss before a voter rejects it


def make_update(
    behaviour: Behaviour, kind: str, global_params: Params, data: ClientData, config: TrainConfig, seed: int
) -> Params:
    """New weights minus the global model, after the behaviour has had its way."""
    if behaviour.trains:
        honest = delta(train(kind, global_params, behaviour.training_data(data.train), config, seed), global_params)
    else:
        honest = [(name, np.zeros_like(values)) for name, values in global_params]
    return behaviour.transform(honest, np.random.default_rng(seed))


def judge(kind: str, global_params: Params, candidate_delta: Params, data: ClientData) -> tuple[bool, float]:
    """Truthful verdict on the candidate from the voter's own held-out split: (accept, candidate accuracy).

    Loss is steadier than accuracy on a few dozen samples, so the verdict compares losses."""
    _, global_loss = evaluate(kind, global_params, data.test)
    accuracy, loss = evaluate(kind, add(global_params, candidate_delta), data.test)
    return bool(loss <= global_loss + LOSS_MARGIN), accuracy
