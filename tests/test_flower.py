"""Flower clients as participants: participant.flower turns NumPyClient methods into the chain's
update and evidence; the examples' clients are real Flower clients (flwr's NumPyClient subclasses
where flwr is installed)."""

import numpy as np
import pytest

from participant.duties import judge
from participant.flower import ClientError, FlowerLearner, genesis_model, load_factory

SHAPES = [(3, 2), (3,)]


class Recorder:
    """A NumPyClient-shaped stub: fit adds one to every weight, evaluate reports the weights' sum."""

    def __init__(self, shapes=SHAPES, num_examples=7):
        self.shapes, self.num_examples, self.configs = shapes, num_examples, []

    def get_parameters(self, config):
        return [np.zeros(s, np.float32) for s in self.shapes]

    def fit(self, parameters, config):
        self.configs.append(dict(config))
        return [p + 1 for p in parameters], self.num_examples, {}

    def evaluate(self, parameters, config):
        return float(sum(p.sum() for p in parameters)), 1, {}


def test_genesis_model_comes_from_the_clients_parameters():
    model = genesis_model(Recorder())
    assert [(n, v.shape, v.dtype) for n, v in model] == [("param0", (3, 2), np.float32), ("param1", (3,), np.float32)]
    assert [n for n, _ in genesis_model(Recorder(), names=["w", "b"])] == ["w", "b"]
    with pytest.raises(ClientError, match="1 names for 2 arrays"):
        genesis_model(Recorder(), names=["w"])


def test_fit_becomes_an_update_and_evaluate_the_evidence():
    client = Recorder()
    learner = FlowerLearner(client, config={"local_epochs": 2})
    model = genesis_model(client)
    update, num_samples = learner.train(model, round_id=4)
    assert num_samples == 7 and all((v == 1).all() for _, v in update)  # fit's weights minus the global model
    assert client.configs == [{"local_epochs": 2, "round": 4}]
    # leave-one-out from evaluate alone: with both updates the sum is 9 (mean step 1 over 9 weights)
    evidence = judge(learner.loss, model, [(update, 1), ([(n, 3 * v) for n, v in update], 1)])
    assert evidence.loss == pytest.approx(18.0)
    assert evidence.scores == pytest.approx([27.0 - 18.0, 9.0 - 18.0])


@pytest.mark.parametrize(
    ("client", "message"),
    [
        (Recorder(num_examples=0), "fit reported 0 examples"),
        (type("Wrong", (Recorder,), {"fit": lambda self, p, c: ([p[0]], 5, {})})(), "shapes"),
        (type("NaN", (Recorder,), {"fit": lambda self, p, c: ([q * np.nan for q in p], 5, {})})(), "NaN"),
    ],
)
def test_a_client_answer_the_chain_cannot_take_is_refused_clearly(client, message):
    with pytest.raises(ClientError, match=message):
        FlowerLearner(client).train(genesis_model(Recorder()), round_id=1)


def test_load_factory_names_what_is_wrong():
    assert load_factory("examples.breast_cancer:client_fn").__name__ == "client_fn"
    with pytest.raises(ValueError, match="MODULE:FACTORY"):
        load_factory("examples.breast_cancer")
    with pytest.raises(ValueError, match="not a callable"):
        load_factory("examples.breast_cancer:NUM_FEATURES")


@pytest.mark.parametrize("spec", ["examples.breast_cancer:client_fn", "examples.digits_cnn:client_fn"])
def test_example_clients_learn_and_their_evidence_tells_a_poisoned_update(spec):
    factory = load_factory(spec)
    learners = [FlowerLearner(factory(i, 4)) for i in range(4)]
    model = genesis_model(learners[0].client)
    before = np.mean([learner.loss(model) for learner in learners[2:]])
    good, n = learners[0].train(model, round_id=1)
    trained = [(name, v + d) for (name, v), (_, d) in zip(model, good)]
    assert np.mean([learner.loss(trained) for learner in learners[2:]]) < before
    honest, m = learners[1].train(trained, round_id=2)
    poisoned = [(name, -4 * d) for name, d in honest]  # a sign flip of the same step
    evidence = judge(learners[2].loss, trained, [(learners[0].train(trained, 2)[0], n), (poisoned, m)])
    assert evidence.scores[1] < 0 < evidence.scores[0]


def test_a_flower_numpyclient_subclass_is_a_participant():
    flwr_client = pytest.importorskip("flwr.client", reason="flwr is the optional [flower] extra")
    from examples.breast_cancer import BreastCancerClient

    assert issubclass(BreastCancerClient, flwr_client.NumPyClient)
    learner = FlowerLearner(BreastCancerClient(0, 4))
    update, num_samples = learner.train(genesis_model(learner.client), round_id=1)
    assert num_samples > 0 and any(np.abs(v).sum() > 0 for _, v in update)
