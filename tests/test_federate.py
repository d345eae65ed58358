"""`flchain federate` end to end: each example's Flower client, unchanged, plays rounds on a real
4-validator localnet whose genesis model came from the client's get_parameters."""

import csv
import time

import pytest

from cli.main import main as flchain
from client.gateway_client import GatewayClient
from examples.breast_cancer import BreastCancerClient
from localnet import Localnet, launch
from localnet.genesis import participant_keys
from participant.flower import load_factory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("spec", "target"), [("examples.breast_cancer:client_fn", 0.9), ("examples.digits_cnn:client_fn", 0.5)]
)
def test_an_example_flower_client_federates_on_the_localnet(tmp_path, cometbft_bin, port_base, capsys, spec, target):
    from flwr.client import NumPyClient  # the flower extra, installed by set-up

    assert isinstance(load_factory(spec)(0, 8), NumPyClient)  # a real Flower client, unchanged
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


class SlowClient(BreastCancerClient):
    """Trains for 9 s: longer than PROPOSE used to last (10 blocks, about 8 s on the old localnet;
    1.5 s at today's 150 ms blocks)."""

    def fit(self, parameters, config):
        time.sleep(9)
        return super().fit(parameters, config)


def slow_client_fn(partition_id: int, num_partitions: int) -> SlowClient:
    return SlowClient(partition_id, num_partitions)


def test_a_proposer_that_trains_longer_than_the_old_fixed_phase_is_not_slashed(tmp_path, cometbft_bin, port_base):
    home, out, base_port = tmp_path / "net", tmp_path / "report", port_base(4)
    args = ["federate", "--client", f"{__name__}:slow_client_fn", "--rounds", "2", "--home", str(home)]
    net = Localnet(home, base_port=base_port)
    try:
        assert flchain([*args, "--out", str(out), "--base-port", str(base_port), "--keep-running"]) == 0
        with (out / "rounds.csv").open() as f:
            rounds = list(csv.DictReader(f))
        assert [r["outcome"] for r in rounds] == ["accepted"] * 2
        assert all(r["submitted"] == r["proposers"] for r in rounds)  # every slow update arrived in time
        gateway = GatewayClient(net.ports(0).gateway_address)
        reasons = {
            e.reason
            for key in participant_keys(launch.keys_dir(home), 8)
            for e in gateway.participant(key.bech32).history
        }
        assert "update_included" in reasons and not {"liveness_proposer", "liveness_voter"} & reasons
    finally:
        net.down()


def test_localnet_up_takes_its_genesis_model_from_a_flower_client(tmp_path, cometbft_bin, port_base, capsys):
    home, base_port = tmp_path / "net", port_base(1)
    up = ["localnet", "--home", str(home), "up", "--validators", "1", "--base-port", str(base_port)]
    assert flchain([*up, "--client", "examples.breast_cancer:client_fn"]) == 0
    try:
        assert "--client examples.breast_cancer:client_fn" in capsys.readouterr().out  # the participant command
        model = GatewayClient(Localnet(home, validators=1, base_port=base_port).ports(0).gateway_address).model()
        assert [(t.name, tuple(t.shape)) for t in model.tensors] == [("param0", (2, 30)), ("param1", (2,))]
    finally:
        Localnet(home).down()
