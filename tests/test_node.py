"""One node per machine: `flchain init`, `flchain genesis ...` and `flchain start`, as an operator runs
them. A validator starts from a genesis built with the CLI; a full node joins it and syncs; Ctrl-C and
SIGTERM stop a node cleanly; a taken port and an unreachable peer are reported in plain words."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from abci_app.genesis import STANDARD_BOND
from client.keys import Key
from client.rpc import CometRPC, NodeUnavailable, RPCError
from node import genesis as gen
from node.home import NodeHome

ROOT = Path(__file__).resolve().parent.parent


def flchain(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if check and result.returncode:
        raise AssertionError(f"flchain {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def init(home: Path, moniker: str, base_port: int, *extra: str) -> NodeHome:
    flchain("init", moniker, "--home", str(home), "--chain-id", "fed-test", "--host", "127.0.0.1",
            "--base-port", str(base_port), "--timeout-commit", "200ms", *extra)  # fmt: skip
    return NodeHome(home)


class RunningNode:
    """`flchain start` in the background; its output lines collected as they come."""

    def __init__(self, home: NodeHome, *extra: str):
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "start", "--home", str(home.path), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for_line(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"node exited ({self.proc.returncode}): {self.lines}")
            time.sleep(0.1)
        raise AssertionError(f"no line with {text!r} within {timeout}s: {self.lines}")

    def rpc(self) -> CometRPC:
        return CometRPC(self.home.settings().node_rpc, timeout=2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def height(node: RunningNode) -> int:
    try:
        return node.rpc().latest_height()
    except (NodeUnavailable, RPCError):
        return -1


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# -- genesis edits (no process) -----------------------------------------------------------------


def test_init_writes_a_home_whose_genesis_needs_a_model_and_accounts(tmp_path, cometbft_bin, port_base):
    home = init(tmp_path / "a", "alice", port_base(1))
    shown = subprocess.run(
        [str(cometbft_bin), "show-node-id", "--home", str(home.path)], capture_output=True, text=True
    )
    assert home.node_id() == shown.stdout.strip()
    settings = home.settings()
    assert settings.abci.startswith("tcp://127.0.0.1:") and settings.gateway_listen.startswith("127.0.0.1:")
    doc = gen.read(home.genesis)
    assert doc["chain_id"] == "fed-test" and [v["name"] for v in doc["validators"]] == ["alice"]
    with pytest.raises(ValueError, match="no initial model"):
        gen.validate(doc)
    refused = flchain("genesis", "validate", "--home", str(home.path), check=False)
    assert refused.returncode == 1 and "set-model" in refused.stderr
    again = flchain("init", "alice", "--home", str(home.path), "--chain-id", "fed-test", check=False)
    assert again.returncode == 1 and "already holds a node" in again.stderr
    # the keyring beside the node survives --force
    (home.path / "keys").mkdir()
    (home.path / "keys" / "alice.json").write_text("{}")
    init(home.path, "alice", port_base(1), "--force")
    assert (home.path / "keys" / "alice.json").exists()


def test_genesis_edits_refuse_duplicates_and_unknown_params(tmp_path, port_base):
    base = port_base(2)
    alice, bob = init(tmp_path / "a", "alice", base), init(tmp_path / "b", "bob", base + 100)
    entry = flchain("genesis", "show-validator", "--home", str(bob.path)).stdout
    assert json.loads(entry)["name"] == "bob"
    flchain("genesis", "add-validator", entry, "--home", str(alice.path))
    dup = flchain("genesis", "add-validator", entry, "--home", str(alice.path), check=False)
    assert dup.returncode == 1 and "already in genesis" in dup.stderr

    key = Key.generate("carol")
    flchain("genesis", "add-account", key.bech32, "5000", "--bond", str(STANDARD_BOND), "--home", str(alice.path))
    dup = flchain("genesis", "add-account", key.bech32, "1", "--home", str(alice.path), check=False)
    assert dup.returncode == 1 and "already in genesis" in dup.stderr
    bad = flchain("genesis", "add-account", "flc1nonsense", "1", "--home", str(alice.path), check=False)
    assert bad.returncode == 1 and "bad address" in bad.stderr
    unknown = flchain("genesis", "set-params", "num_wizards=3", "--home", str(alice.path), check=False)
    assert unknown.returncode == 1 and "no param 'num_wizards'" in unknown.stderr
    flchain("genesis", "set-params", "num_proposers=2", "vote_timeout_ms=9000", "--home", str(alice.path))
    flchain("genesis", "set-model", "--home", str(alice.path))
    valid = flchain("genesis", "validate", "--home", str(alice.path))
    assert "2 validators, 1 accounts, 1 bonded participants" in valid.stdout

    state = gen.app_state(gen.read(alice.genesis))
    assert state.params.num_proposers == 2 and state.params.vote_timeout_ms == 9000
    assert [(a.address, a.balance) for a in state.accounts] == [(key.address, 5000)]
    assert [(p.address, p.stake) for p in state.participants] == [(key.address, STANDARD_BOND)]
    assert len(state.model) > 0


# -- running nodes ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_validator_starts_a_full_node_syncs_and_both_stop_cleanly(tmp_path, cometbft_bin, port_base, closed_port):
    base = port_base(2)
    validator = init(tmp_path / "validator", "alice", base)
    flchain("genesis", "set-model", "--home", str(validator.path))
    flchain("genesis", "add-account", Key.generate("p").bech32, "100000", "--home", str(validator.path))
    full = init(tmp_path / "full", "observer", base + 100)
    full.genesis.write_text(validator.genesis.read_text())  # the operator copies the shared genesis

    first = RunningNode(validator)
    try:
        first.wait_for_line("is running")
        wait_until(lambda: height(first) >= 5, 60, "the validator to make blocks")

        # the same home again: its ports are taken, said before anything starts
        twice = flchain("start", "--home", str(validator.path), check=False)
        assert twice.returncode == 1 and "cannot listen on" in twice.stdout and "already running" in twice.stdout

        peer = flchain("show-node-id", "--home", str(validator.path)).stdout.strip()
        dead_peer = f"{'ab' * 20}@127.0.0.1:{closed_port}"
        second = RunningNode(full, "--peers", f"{peer},{dead_peer}")
        try:
            joined_at = height(first)
            second.wait_for_line("is running")
            wait_until(lambda: height(second) >= joined_at + 2, 60, "the full node to sync past the join height")
            common = height(second)
            hashes = {n.rpc().block(common)["block"]["header"]["app_hash"] for n in (first, second)}
            assert len(hashes) == 1, hashes
            status = second.rpc().status()
            assert status["validator_info"]["voting_power"] == "0"  # a full node, not a validator
            assert "connected" in second.wait_for_line(f"peer {peer}: ", timeout=30)
            assert "Connection refused" in second.wait_for_line(f"peer {dead_peer}: not connected", timeout=30)
        finally:
            assert second.stop(signal.SIGINT) == 0  # Ctrl-C
        assert "node stopped" in second.lines[-1]
    finally:
        code = first.stop(signal.SIGTERM)
    assert code == 0 and first.lines[-2:] == ["stopping: gateway, cometbft, app", "node stopped"]
    # nothing of the node is left listening: it starts again at once, from its stored state
    again = RunningNode(validator)
    try:
        again.wait_for_line("is running")
        wait_until(lambda: height(again) >= common + 1, 60, "the restarted validator to go on")
    finally:
        assert again.stop() == 0


@pytest.mark.integration
def test_a_node_whose_process_dies_stops_and_names_its_log(tmp_path, cometbft_bin, port_base):
    home = init(tmp_path / "v", "alice", port_base(1))
    flchain("genesis", "set-model", "--home", str(home.path))
    node = RunningNode(home)
    try:
        node.wait_for_line("is running")
        app_pid = next(
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit()
            and _cmdline(int(p)).endswith(
                str(home.app_dir)
                + " --address "
                + home.settings().abci
                + " --metrics-listen "
                + home.settings().app_metrics_listen
            )
        )
        os.kill(app_pid, signal.SIGKILL)
        line = node.wait_for_line("error: the node's", timeout=30)
        assert node.proc.wait(30) == 1
        assert str(home.log_path("app")) in line or str(home.log_path("cometbft")) in line
    finally:
        node.stop()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
