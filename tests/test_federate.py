"""`flchain federate` end to end: each example's Flower client, unchanged, plays rounds on a real
4-validator localnet whose genesis model came from the client's get_parameters."""

import csv

import pytest

from cli.main import main as flchain
from localnet import Localnet

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("spec", "target"), [("examples.breast_cancer:client_fn", 0.9), ("examples.digits_cnn:client_fn", 0.5)]
)
def test_an_example_flower_client_federates_on_the_localnet(tmp_path, cometbft_bin, port_base, capsys, spec, target):
    home, out = tmp_path / "net", tmp_path / "report"
    args = ["federate", "--client", spec, "--rounds", "4", "--home", str(home), "--out", str(out)]
    assert flchain([*args, "--base-port", str(port_base(4))]) == 0
    assert "round 4: accepted" in capsys.readouterr().out
    with (out / "rounds.csv").open() as f:
        rounds = list(csv.DictReader(f))
    assert [r["outcome"] for r in rounds] == ["accepted"] * 4
    assert [int(r["model_version"]) for r in rounds] == [1, 2, 3, 4]
    losses = [float(r["loss"]) for r in rounds]
    assert losses[-1] < losses[0] and float(rounds[-1]["accuracy"]) > target
    assert all(r["condemned"] == "0" for r in rounds)  # an honest federation loses no stake to the judgement
    assert not Localnet(home).running()  # stopped afterwards
