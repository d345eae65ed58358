"""A tx that CheckTx accepted and its block refused, reported as such by `tx --wait` and `query tx`.

CheckTx runs the whole handler against the node's view, so a refusal in the block needs two views
that disagree: here the same account's nonce is spent through two validators at once. Their
mempools neither gossip nor recheck (`mempool.broadcast` and `mempool.recheck` off, CometBFT
settings an operator may choose), so each keeps its own tx; the first proposer commits its copy,
and the second proposer's block then carries a tx whose nonce is already spent."""

import hashlib

import numpy as np
import pytest
import tomlkit

from abci_app.genesis import STANDARD_BOND, to_app_state
from cli.main import main as flchain
from client import tx as txb
from client.tx import sign_tx
from localnet import Localnet, launch
from localnet.genesis import localnet_genesis, participant_keys
from node.home import NodeHome


@pytest.fixture(scope="module")
def net(tmp_path_factory, cometbft_bin, port_base):
    home = tmp_path_factory.mktemp("refusal-net")
    net = Localnet(home, validators=2, cometbft=cometbft_bin, base_port=port_base(2))
    keys = participant_keys(launch.keys_dir(home), 1)
    net.init(to_app_state(localnet_genesis(keys, [("w", np.zeros(4, np.float32))])), timeout_commit="1s")
    for i in range(2):
        path = NodeHome(net.node_home(i)).config_toml
        config = tomlkit.parse(path.read_text())
        config["mempool"]["broadcast"] = False
        config["mempool"]["recheck"] = False
        path.write_text(tomlkit.dumps(config))
    try:
        net.up(launch.app_command, gateway_command=launch.gateway_command)
        yield net, keys[0]
    finally:
        net.down()


def next_proposer(net: Localnet) -> int:
    """The node that proposes the next block, read right after a block was committed."""
    rpc = net.rpc(0)
    rpc.wait_for_height(rpc.latest_height() + 1)
    proposer = rpc.call("consensus_state")["round_state"]["proposer"]["address"]
    addresses = [NodeHome(net.node_home(i)).validator()["address"] for i in range(2)]
    return addresses.index(proposer)


@pytest.mark.integration
def test_a_nonce_spent_through_two_validators_is_refused_in_its_block(net, capsys):
    net, key = net
    first = next_proposer(net)
    other = 1 - first
    # the next proposer gets one tx spending nonce 0 ...
    early = sign_tx(key, net.chain_id, 0, [txb.bond(STANDARD_BOND)], memo="through the first proposer")
    assert net.rpc(first).broadcast_tx_sync(early).code == 0
    # ... and the CLI spends nonce 0 again through the other validator, before the first tx's block
    keyring = str(launch.keys_dir(net.home))
    ports = net.ports(other)
    command = ["tx", "bond", str(STANDARD_BOND), "--from", key.name, "--keyring-dir", keyring]
    command += ["--gateway", ports.gateway_address, "--node", ports.rpc_url, "--wait", "--wait-timeout", "30"]
    assert flchain(command) == 1  # the exit code says the block refused it
    said = capsys.readouterr().out.strip()
    assert " refused in its block at height " in said and "code 11 bad_nonce" in said, said
    tx_hash = said.split()[1]

    # query tx, on either node, reports the same block result; the first tx was committed
    for node in (net.ports(0).rpc_url, net.ports(1).rpc_url):
        assert flchain(["query", "tx", tx_hash, "--node", node]) == 1
        assert capsys.readouterr().out.strip() == said
    committed = net.rpc(first).tx(hashlib.sha256(early).hexdigest().upper())
    refused_at = int(said.split("height ")[1].split(":")[0])
    assert committed is not None and committed.ok and committed.height < refused_at
    # and the chain went on past the refusing block
    net.rpc(other).wait_for_height(refused_at + 2, timeout=10)
