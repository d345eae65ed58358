"""Behaviours do what their names say; the packaged data splits as promised."""

from dataclasses import replace

import numpy as np
import pytest

from participant import behaviours, duties
from participant.digits import DigitsLearner, make_update
from participant.duties import judge
from participant.learner import Part
from participant.ml import data, models
from participant.ml.training import TrainConfig, evaluate

UPDATE = [("w", np.array([1.0, -2.0, 3.0], np.float32)), ("b", np.array([0.5], np.float32))]
RNG = np.random.default_rng


def test_sign_flip_scaled_free_rider_and_noise_transforms():
    flipped = behaviours.SignFlip().transform(UPDATE, RNG(0))
    assert flipped[0][1].tolist() == [-4.0, 8.0, -12.0]
    assert behaviours.Scaled().transform(UPDATE, RNG(0))[0][1].tolist() == [20.0, -40.0, 60.0]
    assert all((v == 0).all() for _, v in behaviours.FreeRider().transform(UPDATE, RNG(0)))
    noise = behaviours.GaussianNoise(sigma=0.3).transform([("w", np.zeros(20_000, np.float32))], RNG(0))[0][1]
    assert noise.std() == pytest.approx(0.3, rel=0.05)
    assert behaviours.Honest().transform(UPDATE, RNG(0)) is UPDATE


def test_adaptive_attacks_and_the_hidden_free_rider():
    tiny = behaviours.TinyStep().transform([("w", np.zeros(10_000, np.float32))], RNG(0))[0][1]
    assert 0 < np.abs(tiny).max() < 0.01 and tiny.std() == pytest.approx(1e-3, rel=0.05)  # never zero, never useful
    assert behaviours.Stealthy().transform(UPDATE, RNG(0))[0][1].tolist() == [-1.0, 2.0, -3.0]
    intermittent = behaviours.Intermittent(attack_share=0.5)
    firsts = [intermittent.transform(UPDATE, RNG(seed))[0][1][0] for seed in range(200)]
    assert set(firsts) == {1.0, -4.0} and 70 < firsts.count(-4.0) < 130  # honest in about half of its rounds
    colluder = behaviours.make("colluding", lies=False)
    assert colluder.report(1.0, [-0.3, 0.2], [True, False]) == [2.3, -2.2]  # praise the accomplice, damn the rest
    assert colluder.transform(UPDATE, RNG(0))[0][1].tolist() == [-4.0, 8.0, -12.0]
    inflated = behaviours.make("inflated_claim", lies=True)
    assert inflated.transform(UPDATE, RNG(0))[0][1].tolist() == [-1.0, 2.0, -3.0]  # at an honest update's size
    assert inflated.claim(54) == 5_400 and behaviours.Honest().claim(54) == 54
    assert inflated.report(1.0, [0.1], [False]) == [-0.1]


def test_a_learner_sends_the_claim_its_behaviour_makes():
    shard = data.partition(4, seed=0)[0][0]
    honest = DigitsLearner(shard)
    inflated = DigitsLearner(shard, behaviour=behaviours.InflatedClaim())
    start = models.initial_params("mlp", 0)
    assert honest.train(start, 1)[1] == len(shard.train)
    assert inflated.train(start, 1)[1] == 100 * len(shard.train)


def test_label_flip_changes_only_labels():
    split = data.Split(np.ones((3, 64), np.float32), np.array([0, 3, 9]))
    flipped = behaviours.LabelFlip().training_data(split)
    assert flipped.y.tolist() == [9, 6, 0] and flipped.x is split.x


def test_reports_truthful_or_lying():
    assert behaviours.Honest().report(1.0, [0.1, -0.2], [False, False]) == [0.1, -0.2]
    assert behaviours.LyingVoter().report(1.0, [0.1, -0.2], [False, False]) == [-0.1, 0.2]
    assert behaviours.make("sign_flip", lies=True).report(1.0, [0.1], [False]) == [-0.1]
    assert behaviours.make("sign_flip", lies=False).report(1.0, [0.1], [False]) == [0.1]
    assert {b.malicious for b in map(behaviours.make, behaviours.ATTACKS)} == {True}
    # the start's loss: a liar mirrors the round's gain, a colluder claims what serves its accomplices
    assert behaviours.Honest().report_start(1.0, 1.3, [False]) == 1.3
    assert behaviours.LyingVoter().report_start(1.0, 1.3, [False]) == pytest.approx(0.7)
    assert behaviours.LyingVoter().report_start(1.0, 2.5, [False]) == 0.0
    assert behaviours.make("colluding").report_start(1.0, 0.8, [True, False]) == 3.0
    assert behaviours.make("colluding").report_start(1.0, 1.3, [False, False]) == 0.0


def test_iid_partition_is_disjoint_and_complete():
    clients, test = data.partition(10, seed=1)
    sizes = [len(c.train) + len(c.test) for c in clients]
    assert sum(sizes) + len(test) == len(data.load()) and max(sizes) - min(sizes) <= 1
    rows = {tuple(x) for c in clients for x in np.concatenate([c.train.x, c.test.x])}
    assert not rows & {tuple(x) for x in test.x} or len(rows) < sum(sizes)  # digits has duplicate images


def test_a_voter_measures_on_every_sample_it_holds():
    client = data.partition(10, seed=1)[0][0]
    assert len(client.everything) == len(client.train) + len(client.test)
    assert client.everything.x[: len(client.train)].tolist() == client.train.x.tolist()
    assert client.everything.y[len(client.train) :].tolist() == client.test.y.tolist()
    params = models.initial_params("mlp", seed=3)
    learner = DigitsLearner(client)
    assert learner.loss(params) == evaluate("mlp", params, client.everything)[1]
    assert learner.loss(params) != evaluate("mlp", params, client.test)[1]
    part = Part(5, 2)  # every sample but every fifth, from the third
    kept = [i for i in range(len(client.everything)) if i % 5 != 2][: len(client.everything) * 4 // 5]
    subset = data.Split(client.everything.x[kept], client.everything.y[kept])
    assert learner.loss(params, part) == evaluate("mlp", params, subset)[1]


def test_a_part_leaves_out_every_period_th_sample_but_never_all():
    assert Part(5, 2).indices(12).tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]  # 9 of 12: four fifths, rounded down
    assert Part(5, 0).indices(1).tolist() == [0]  # a single sample, which the part would leave out: kept
    assert duties.part_for(1, round_id=9) is None  # one update: the start is its leave-one-out model
    assert duties.part_for(3, round_id=9) == Part(5, 4)
    assert duties.part_for(3, round_id=10) == Part(5, 0)  # a different slice left out each round


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_a_voters_work_stays_updates_plus_one_measures_of_its_data(count):
    """The start, every update together and each left out: count + 2 models (count + 1 with one
    update), each on the part part_for gives, no more samples than count + 1 measures of them all."""
    samples = 37
    start = [("w", np.zeros(3, np.float32))]
    updates = [([("w", np.full(3, i + 1.0, np.float32))], 10) for i in range(count)]
    part = duties.part_for(count, round_id=4)
    measured = []
    evidence = judge(
        lambda p: measured.append(samples if part is None else part.indices(samples).size) or 1.0, start, updates
    )
    assert len(measured) == count + (2 if count > 1 else 1)
    assert sum(measured) <= (count + 1) * samples
    assert evidence.start_loss == 1.0 and len(evidence.scores) == count


def test_dirichlet_partition_is_skewed():
    iid, _ = data.partition(10, seed=2)
    skewed, _ = data.partition(10, alpha=0.1, seed=2)

    def label_entropy(client):
        p = np.bincount(client.train.y, minlength=10) / len(client.train)
        return -(p[p > 0] * np.log(p[p > 0])).sum()

    assert np.mean([label_entropy(c) for c in skewed]) < np.mean([label_entropy(c) for c in iid]) - 0.5


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_training_improves_and_a_flipped_update_is_judged_bad(kind):
    clients, test = data.partition(5, seed=0)
    initial = models.initial_params(kind, 0)
    honest = make_update(behaviours.Honest(), kind, initial, clients[0], TrainConfig(epochs=10, max_steps=0), seed=1)
    trained = [(n, p + d) for (n, p), (_, d) in zip(initial, honest)]
    assert evaluate(kind, trained, test)[0] > evaluate(kind, initial, test)[0] + 0.2
    # From a model that has learned something, leaving the honest update out costs held-out loss,
    # leaving a flipped one out saves a lot of it; with one update, leaving it out is the model itself.
    good = make_update(behaviours.Honest(), kind, trained, clients[2], TrainConfig(), 2)
    attack = make_update(behaviours.SignFlip(), kind, trained, clients[3], TrainConfig(), seed=2)

    def voter_loss(params):
        return evaluate(kind, params, clients[1].test)[1]

    evidence = judge(voter_loss, trained, [(good, 100), (attack, 100)])
    assert evidence.scores[1] < -0.1 * evidence.loss < 0.1 * evidence.loss < evidence.scores[0]
    alone = judge(voter_loss, trained, [(good, 50)])
    assert alone.scores[0] == pytest.approx(evaluate(kind, trained, clients[1].test)[1] - alone.loss, abs=1e-6)
    assert alone.scores[0] > 0


def test_alignments_are_cosines_with_the_fedavg_of_the_others():
    def params(*values):
        return [("w", np.array(values, np.float32))]

    updates = [(params(1.0, 0.0), 1), (params(1.0, 1.0), 3), (params(-2.0, 0.0), 1)]
    evidence = judge(lambda p: float(p[0][1].sum()), params(0.0, 0.0), updates)
    # the others' FedAvg directions: update 0 sees 3*(1,1) + (-2,0) = (1,3), update 1 sees (1,0) + (-2,0)
    # = (-1,0), update 2 sees (1,0) + 3*(1,1) = (4,3)
    assert evidence.alignments == pytest.approx([1 / np.sqrt(10), -1 / np.sqrt(2), -4 / 5])
    assert judge(lambda p: 0.0, params(0.0, 0.0), [updates[0]]).alignments == [0.0]  # nothing to align with
    assert judge(lambda p: 0.0, params(0.0, 0.0), [(params(0.0, 0.0), 1), updates[1]]).alignments[0] == 0.0


def test_a_large_models_evidence_read_a_chunk_at_a_time_is_the_whole_models():
    """The voter's leave-one-out models and alignments, computed a chunk at a time, are the ones the
    whole tensors give (float64 sums, float32 models)."""
    rng = np.random.default_rng(5)
    shapes = [(3, duties._CHUNK - 5), (7,)]  # the first spans three chunks and ends mid-chunk
    start = [(f"t{i}", rng.normal(0, 0.1, s).astype(np.float32)) for i, s in enumerate(shapes)]
    updates = [([(n, rng.normal(0, 0.01, v.shape).astype(np.float32)) for n, v in start], k) for k in (100, 37, 250)]
    seen: list[list[np.ndarray]] = []
    evidence = judge(lambda p: seen.append([v for _, v in p]) or 0.0, start, updates)

    total = sum(k for _, k in updates)
    sums = [sum(k * u[i][1].astype(np.float64) for u, k in updates) for i in range(len(shapes))]
    expected = [[v for _, v in start], [s + ((1 / total) * t).astype(np.float32) for (_, s), t in zip(start, sums)]]
    for update, k in updates:
        rest = [t - k * u.astype(np.float64) for t, (_, u) in zip(sums, update)]
        expected.append([s + ((1 / (total - k)) * r).astype(np.float32) for (_, s), r in zip(start, rest)])
        x = np.concatenate([u.ravel() for _, u in update]).astype(np.float64)
        y = np.concatenate([r.ravel() for r in rest])
        cosine = x @ y / np.sqrt((x @ x) * (y @ y))
        assert evidence.alignments[len(expected) - 3] == pytest.approx(cosine, rel=1e-12)
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected):
        assert all(g.dtype == np.float32 and g.shape == w.shape and (g == w).all() for g, w in zip(got, want))


def test_mlp_names_and_shapes_are_the_genesis_models():
    digits_mlp = [("fc1.weight", (32, 64)), ("fc1.bias", (32,)), ("fc2.weight", (10, 32)), ("fc2.bias", (10,))]
    assert [(n, v.shape) for n, v in models.initial_params("mlp")] == digits_mlp


def test_the_proximal_term_keeps_a_skewed_shard_near_the_global_model():
    skewed, test = data.partition(10, alpha=0.1, seed=2)
    shard = min(skewed, key=lambda c: len(np.unique(c.train.y)))  # the most one-sided shard
    start = models.initial_params("mlp", 0)

    def drift(mu: float) -> float:
        update = make_update(behaviours.Honest(), "mlp", start, shard, TrainConfig(proximal_mu=mu), seed=1)
        return float(np.sqrt(sum((d**2).sum() for _, d in update)))

    plain, prox = drift(0.0), drift(1.0)
    assert prox < 0.8 * plain  # the step is pulled back toward the global model
    assert drift(0.0) == plain  # and training stays a pure function of its seed


def test_local_training_stops_after_the_epochs_of_the_typical_shard():
    clients = data.partition(10, alpha=0.1, seed=2)[0]
    shard = max(clients, key=lambda c: len(c.train))  # a large one-sided shard: many batches per epoch
    batches = -(-len(shard.train) // 16)
    typical = sum(len(c.train) for c in clients) // len(clients)
    assert shard.typical_train == typical and TrainConfig().step_cap(typical) == 5 * -(-typical // 16) < batches * 5
    assert TrainConfig(max_steps=0).step_cap(typical) is None and TrainConfig(max_steps=7).step_cap(typical) == 7
    assert TrainConfig().step_cap(0) is None  # a shard of unknown origin trains every epoch
    start = models.initial_params("mlp", 0)

    def update(config: TrainConfig, client=shard):
        return make_update(behaviours.Honest(), "mlp", start, client, config, seed=1)

    def same(a, b) -> bool:
        return all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))

    # a cap of one epoch's batches is that first epoch, exactly
    assert same(update(TrainConfig(epochs=5, max_steps=batches)), update(TrainConfig(epochs=1, max_steps=0)))
    # by default the large shard stops at the typical shard's 5 epochs, as an explicit cap would
    assert same(update(TrainConfig()), update(TrainConfig(max_steps=5 * -(-typical // 16))))
    assert not same(update(TrainConfig()), update(TrainConfig(max_steps=0)))
    # the same shard without its federation's figure trains in full
    assert same(update(TrainConfig(), replace(shard, typical_train=0)), update(TrainConfig(max_steps=0)))
