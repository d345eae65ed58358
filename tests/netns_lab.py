"""A 4-machine network in one Linux box: run as root of fresh user + network namespaces (see
test_netns.py). Each node gets its own network namespace with one address on a bridge, so nodes
reach each other only as separate hosts do; this driver sits on the bridge like an operator's
laptop. It builds the network with the documented per-node commands (init, genesis, start), runs a
federation of Flower clients through the nodes' gateways, kills one node hard and restarts it, and
prints one JSON line of what it saw for the test to check.

    python tests/netns_lab.py WORKDIR      (inside: unshare --user --map-root-user --net --fork)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomlkit

from abci_app import query_paths as qp
from abci_app.genesis import STANDARD_BOND
from client.gateway_client import GatewayClient
from client.keys import Key
from client.rpc import CometRPC, NodeUnavailable, RPCError
from participant.flower import FlowerLearner, load_factory
from participant.runtime import Crew, Participant

NODES, PARTICIPANTS = 4, 6
SUBNET = "10.77.0"
BRIDGE_IP = f"{SUBNET}.1"
CLIENT = "examples.breast_cancer:client_fn"
ROOT = Path(__file__).resolve().parent.parent
PARAMS = ["num_proposers=2", "num_voters=4", "propose_timeout_ms=30000", "vote_timeout_ms=15000"]


def log(message: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sh(*argv: str, netns_pid: int | None = None) -> str:
    if netns_pid is not None:
        argv = ("nsenter", f"--net=/proc/{netns_pid}/ns/net", *argv)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()[-1500:]}")
    return result.stdout


def flchain(*args: str) -> str:
    return sh(sys.executable, "-m", "cli", *args)


def make_hosts() -> list[tuple[int, str]]:
    """A bridge in this namespace and, per node, a namespace held by a sleeper with one veth on it."""
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    hosts = []
    for i in range(NODES):
        holder = subprocess.Popen(["unshare", "--net", "sleep", "100000"])
        time.sleep(0.2)  # unshare has made the namespace and exec'd sleep
        ip = f"{SUBNET}.{11 + i}"
        sh("ip", "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", str(holder.pid))
        sh("ip", "link", "set", f"veth{i}", "master", "br0")
        sh("ip", "link", "set", f"veth{i}", "up")
        for cmd in (["ip", "addr", "add", f"{ip}/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"]):  # fmt: skip
            sh(*cmd, netns_pid=holder.pid)
        hosts.append((holder.pid, ip))
    return hosts


def build_network(work: Path, hosts: list[tuple[int, str]]) -> tuple[list[Path], list[str], list[Key]]:
    """Every operator inits a node on its own address; operator 0 builds the genesis and shares it."""
    homes = [work / f"node{i}" for i in range(NODES)]
    for i, (home, (_, ip)) in enumerate(zip(homes, hosts)):
        flchain(
            "init", f"org{i}", "--home", str(home), "--chain-id", "netns-fed", "--host", ip, "--timeout-commit", "300ms"
        )
    addresses = [flchain("show-node-id", "--home", str(home)).strip() for home in homes]  # ID@IP:PORT
    for home in homes[1:]:
        flchain(
            "genesis",
            "add-validator",
            flchain("genesis", "show-validator", "--home", str(home)),
            "--home",
            str(homes[0]),
        )
    keys = [Key.generate(f"participant-{k}") for k in range(PARTICIPANTS)]
    for key in keys:
        flchain("genesis", "add-account", key.bech32, "100000", "--bond", str(STANDARD_BOND), "--home", str(homes[0]))
    flchain("genesis", "set-model", "--client", CLIENT, "--home", str(homes[0]))
    flchain("genesis", "set-params", *PARAMS, "--home", str(homes[0]))
    flchain("genesis", "validate", "--home", str(homes[0]))
    for home in homes[1:]:
        (home / "config" / "genesis.json").write_text((homes[0] / "config" / "genesis.json").read_text())
    return homes, addresses, keys


def start_node(i: int, home: Path, netns_pid: int, peers: list[str]) -> subprocess.Popen:
    out = open(home / "start.out", "ab")  # noqa: SIM115 (kept open for the process's life)
    return subprocess.Popen(
        ["nsenter", f"--net=/proc/{netns_pid}/ns/net", sys.executable, "-m", "cli", "start", "--home", str(home),
         "--peers", ",".join(peers)],
        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip


def listen_addresses(home: Path) -> list[str]:
    config = tomlkit.parse((home / "config" / "config.toml").read_text())
    return [str(config["p2p"]["laddr"]), str(config["rpc"]["laddr"])]


def height(rpc: CometRPC) -> int:
    try:
        return rpc.latest_height()
    except (NodeUnavailable, RPCError):
        return -1


def wait(predicate, timeout: float, what: str, nodes: list[subprocess.Popen] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = [i for i, node in enumerate(nodes) if node.poll() is not None]
        if dead:
            raise RuntimeError(f"node {dead[0]} stopped while waiting for {what}; read its start.out")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out ({timeout:.0f}s) waiting for {what}")
        time.sleep(0.3)


def tallied_rounds(rpc: CometRPC) -> int:
    """Rounds finished so far: the current round's id minus one (0 before the first)."""
    try:
        answer = rpc.abci_query(qp.path(qp.ROUND, None))
    except (NodeUnavailable, RPCError):
        return 0
    return max(0, qp.ANSWERS[qp.ROUND].FromString(answer.value).id - 1) if not answer.code else 0


def kill_namespace(netns_pid: int) -> int:
    """SIGKILL every process in that network namespace but its holder: a node losing power."""
    target = os.readlink(f"/proc/{netns_pid}/ns/net")
    killed = 0
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != netns_pid:
            try:
                if os.readlink(f"/proc/{name}/ns/net") == target:
                    os.kill(int(name), signal.SIGKILL)
                    killed += 1
            except OSError:
                pass
    return killed


def main(work: Path) -> dict:
    hosts = make_hosts()
    log(f"hosts: {[ip for _, ip in hosts]}")
    homes, addresses, keys = build_network(work, hosts)
    peers_of = [[a for j, a in enumerate(addresses) if j != i] for i in range(NODES)]
    rpcs = [CometRPC(f"http://{ip}:26657", timeout=3) for _, ip in hosts]
    nodes = [start_node(i, homes[i], hosts[i][0], peers_of[i]) for i in range(NODES)]
    crew = Crew([])
    report: dict = {"ips": [ip for _, ip in hosts]}
    try:
        wait(lambda: min(height(r) for r in rpcs) >= 3, 120, "all 4 nodes at height 3", nodes)
        report["peer_ips"] = sorted({p["remote_ip"] for r in rpcs for p in r.call("net_info")["peers"]})
        factory = load_factory(CLIENT)
        crew = Crew([
            Participant(key, GatewayClient(f"{hosts[k % NODES][1]}:26659"), FlowerLearner(factory(k, PARTICIPANTS)))
            for k, key in enumerate(keys)
        ])  # fmt: skip
        crew.start()
        wait(lambda: tallied_rounds(rpcs[0]) >= 2, 180, "2 rounds tallied", nodes)
        log(f"2 rounds tallied at height {height(rpcs[0])}; killing node 3")
        report["killed_processes"] = kill_namespace(hosts[3][0])
        nodes[3].wait(10)
        rounds_at_kill = tallied_rounds(rpcs[0])
        wait(lambda: tallied_rounds(rpcs[0]) >= rounds_at_kill + 1, 180, "a round tallied with node 3 down", nodes[:3])
        behind_from = height(rpcs[0])
        report["rounds_while_down"] = tallied_rounds(rpcs[0]) - rounds_at_kill
        nodes[3] = start_node(3, homes[3], hosts[3][0], peers_of[3])
        wait(lambda: height(rpcs[3]) >= behind_from + 3, 120, "restarted node 3 to catch up", nodes)
        crew.stop()
        common = min(height(r) for r in rpcs)
        report["common_height"] = common
        report["app_hashes"] = [r.block(common)["block"]["header"]["app_hash"] for r in rpcs]
        report["rounds_tallied"] = tallied_rounds(rpcs[0])

        # a round may still finish on txs sent before the crew stopped, one node a block before the
        # others: the nodes agree once each has committed it
        def model_versions() -> list[int]:
            return [GatewayClient(f"{ip}:26659").model().version for _, ip in hosts]

        wait(lambda: len(set(model_versions())) == 1, 30, "one model version on every node", nodes)
        report["models"] = model_versions()
        report["listen"] = [listen_addresses(home) for home in homes]
    finally:
        crew.stop()
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        report["exit_codes"] = [node.wait(30) for node in nodes]
        for pid, _ in hosts:
            os.kill(pid, signal.SIGKILL)
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))), flush=True)
