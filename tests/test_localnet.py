"""The localnet and the RPC client against real CometBFT processes running the builtin kvstore app.

One 4-validator net is shared by the module (starting one costs a few seconds on two cores);
tests run in file order and the last one takes it down.
"""

import time

import pytest

from client.rpc import CometRPC, NodeUnavailable, RPCError
from localnet import Localnet, LocalnetError

APP_STATE = {"note": "kvstore ignores this", "numbers": [1, 2, 3]}
BLOCK_MAX_BYTES = 8 * 1024 * 1024
MAX_TX_BYTES = 2 * 1024 * 1024


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def net(tmp_path_factory, cometbft_bin, port_base):
    localnet = Localnet(
        tmp_path_factory.mktemp("localnet"), validators=4, cometbft=cometbft_bin, base_port=port_base(4)
    )
    try:
        localnet.init(APP_STATE, block_max_bytes=BLOCK_MAX_BYTES, max_tx_bytes=MAX_TX_BYTES)
        localnet.up(timeout=60)
        yield localnet
    finally:
        localnet.down()


@pytest.mark.integration
def test_all_nodes_advance_with_one_app_hash(net):
    heights = net.wait_for_height(3, timeout=30)
    assert set(heights) == {0, 1, 2, 3} and min(heights.values()) >= 3
    common = min(heights.values())
    hashes = {i: net.rpc(i).block(common)["block"]["header"]["app_hash"] for i in range(4)}
    assert len(set(hashes.values())) == 1, hashes
    rows = net.status()
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert all(r["running"] and r["height"] >= 3 and r["catching_up"] is False for r in rows), rows
    assert len({r["rpc"] for r in rows}) == 4


@pytest.mark.integration
def test_genesis_and_config_are_shared(net):
    genesis = net.rpc(1).call("genesis")["genesis"]
    assert genesis["chain_id"] == "flchain-localnet"
    assert genesis["app_state"] == APP_STATE
    assert genesis["consensus_params"]["block"]["max_bytes"] == str(BLOCK_MAX_BYTES)
    texts = {(net.node_home(i) / "config" / "genesis.json").read_text() for i in range(4)}
    assert len(texts) == 1
    deadline = time.monotonic() + 15  # blocks start before every peer has dialled every other
    while len(net.rpc(0).net_info()["peers"]) < 3:
        assert time.monotonic() < deadline, f"node 0 sees {net.rpc(0).net_info()['n_peers']} peers, not 3"
        time.sleep(0.2)
    assert net.rpc(2).status()["node_info"]["network"] == "flchain-localnet"


@pytest.mark.integration
def test_tx_on_one_node_is_read_back_on_another(net):
    result = net.rpc(0).broadcast_tx_sync(b"color=blue")
    assert result.code == 0, result
    assert len(result.hash) == 64
    reader = net.rpc(2)
    deadline = time.monotonic() + 15
    while (answer := reader.abci_query("", b"color")).value != b"blue":
        assert time.monotonic() < deadline, f"tx not visible on node 2: {answer}"
        time.sleep(0.2)
    assert answer.code == 0 and answer.height >= 1
    rejected = net.rpc(1).broadcast_tx_sync(b"not a kv tx")
    assert rejected.code != 0
    committed = net.rpc(3).broadcast_tx_commit(b"shape=round")
    assert committed["tx_result"].get("code", 0) == 0
    net.rpc(1).wait_for_height(int(committed["height"]))  # node 1 may be a block behind node 3
    results = net.rpc(1).block_results(int(committed["height"]))
    assert len(results["txs_results"]) >= 1


@pytest.mark.integration
def test_rpc_errors_are_typed(net):
    with pytest.raises(RPCError, match="not found"):
        net.rpc(0).call("no_such_method")
    with pytest.raises(RPCError):
        net.rpc(0).block(10**9)
    with pytest.raises(LocalnetError, match="already running"):
        net.up()


@pytest.mark.integration
def test_stopped_node_restarts_and_catches_up(net):
    net.stop_node(3, "cometbft")
    assert not net.status()[3]["running"]
    with pytest.raises(NodeUnavailable):
        net.rpc(3).status()
    # Three of four validators hold more than 2/3 of the power: the chain goes on without node 3.
    before = net.rpc(0).latest_height()
    net.wait_for_height(before + 2, timeout=30, nodes=[0, 1, 2])
    net.stop_node(3, "app")  # builtin app: nothing to stop, no error
    net.start_node(3)
    target = net.rpc(0).latest_height()
    net.wait_for_height(target, timeout=40, nodes=[3])
    assert net.status()[3]["running"]
    assert net.rpc(3).abci_query("", b"color").value == b"blue"  # replayed state


@pytest.mark.integration
def test_down_leaves_no_process(net):
    pids = [p for row in net.status() for p in row["pids"].values()]
    assert len(pids) == 4 and all(_pid_alive(p) for p in pids)
    net.down()
    assert not any(_pid_alive(p) for p in pids)
    assert not net.pids_path.exists()
    assert not net.running()
    net.down()  # idempotent
    assert all(not r["running"] and r["height"] is None for r in net.status())


@pytest.mark.integration
def test_dead_app_fails_up_naming_its_log(tmp_path, cometbft_bin, port_base):
    net = Localnet(tmp_path / "net", validators=1, cometbft=cometbft_bin, base_port=port_base(1))
    try:
        net.init()
        with pytest.raises(LocalnetError, match=r"node0-app\.log") as err:
            net.up(
                lambda i, home, ports: ["sh", "-c", f"echo app {i} cannot serve {ports.abci_address}; exit 3"],
                timeout=20,
            )
        assert "cannot serve tcp://127.0.0.1:" in str(err.value)
        assert not net.running() and not net.pids_path.exists()
        with pytest.raises(LocalnetError, match="force=True"):
            net.init()
    finally:
        net.down()


def test_unreachable_node_raises_one_line(closed_port):
    rpc = CometRPC(f"http://127.0.0.1:{closed_port}", timeout=2)
    with pytest.raises(NodeUnavailable) as err:
        rpc.status()
    message = str(err.value)
    assert f"127.0.0.1:{closed_port}" in message and "\n" not in message
    with pytest.raises(TimeoutError, match="did not reach height 5"):
        rpc.wait_for_height(5, timeout=0.3)
