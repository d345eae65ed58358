"""`flchain start`: run one node's app, cometbft and gateway in the foreground, as one unit.

They start in order (app, then cometbft once the app listens, then the gateway once the RPC
answers) and stop in reverse on SIGINT/SIGTERM, so no block is left half-applied. If one of them
exits, the others are stopped and the error names its log. Children get SIGTERM from the kernel if
the supervisor itself dies (prctl PDEATHSIG), so a killed node leaves no orphans holding its ports.
"""

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from client.rpc import CometRPC, NodeUnavailable, RPCError
from node import genesis as gen
from node import processes
from node.home import NodeHome
from node.ports import dial, split, taken

PEER_CHECK_S = 10.0  # how often unconnected persistent peers are reported
_PR_SET_PDEATHSIG = 1


class NodeStartError(RuntimeError):
    """The node cannot start or one of its processes died; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int


def endpoints_of(home: NodeHome) -> list[Endpoint]:
    """Every address this node will listen on."""
    cfg = tomlkit.parse(home.config_toml.read_text())
    settings = home.settings()
    addresses = {
        "p2p": str(cfg["p2p"]["laddr"]),
        "rpc": str(cfg["rpc"]["laddr"]),
        "abci": settings.abci,
        "gateway": settings.gateway_listen,
        "app metrics": settings.app_metrics_listen,
        "cometbft metrics": str(cfg["instrumentation"]["prometheus_listen_addr"]),
    }
    return [Endpoint(name, *split(address)) for name, address in addresses.items() if address]


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the signal handler still stops children on SIGINT/SIGTERM


class NodeSupervisor:
    def __init__(
        self,
        home: NodeHome,
        cometbft: Path,
        peers: list[str] | None = None,
        say: Callable[[str], None] = print,
        ready_timeout: float = 60,
    ):
        self.home = home
        self.cometbft = Path(cometbft)
        self.peers = peers
        self.say = say
        self.ready_timeout = ready_timeout
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()

    # -- checks ------------------------------------------------------------------------------

    def preflight(self) -> None:
        if not self.home.exists():
            raise NodeStartError(f"no node home at {self.home.path} (run `flchain init` first)")
        if not self.cometbft.exists():
            raise NodeStartError(f"no cometbft binary at {self.cometbft} (run scripts/setup.sh, or pass --cometbft)")
        try:
            gen.validate(gen.read(self.home.genesis))
        except ValueError as err:
            raise NodeStartError(f"{self.home.genesis}: {err}") from None
        busy = [(e, why) for e in endpoints_of(self.home) if (why := taken(e.host, e.port))]
        if busy:
            listed = "; ".join(f"{e.name} {e.host}:{e.port} ({why})" for e, why in busy)
            raise NodeStartError(
                f"cannot listen on {listed}: is this node (or another) already running? "
                f"Ports are set in {self.home.config_toml} and {self.home.settings_path}"
            )

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, which: str, argv: list[str]) -> None:
        self.home.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.home.log_path(which), "ab") as log:
            log.write(f"\n==== flchain start: {' '.join(argv)}\n".encode())
            log.flush()
            self.children[which] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home.path,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops them in order
                preexec_fn=_die_with_parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def _dead(self) -> str | None:
        for which, proc in self.children.items():
            if proc.poll() is not None:
                return which
        return None

    def _failure(self, which: str) -> NodeStartError:
        log = self.home.log_path(which)
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:]
        code = self.children[which].returncode
        return NodeStartError(f"the node's {which} exited ({code}); read {log}: {' | '.join(lines)[-600:]}")

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not ready():
            if (dead := self._dead()) is not None:
                raise self._failure(dead)
            if self.stopping.is_set():
                raise NodeStartError("stopped while starting")
            if time.monotonic() > deadline:
                raise NodeStartError(f"{what} not ready within {self.ready_timeout:.0f}s; read {self.home.log_dir}")
            time.sleep(0.1)

    def start(self) -> None:
        self.preflight()
        settings = self.home.settings()
        rpc = CometRPC(settings.node_rpc, timeout=2)
        self._spawn("app", processes.app_argv(self.home))
        self._wait("the app's ABCI socket", lambda: dial(settings.abci, 0.5) is None)
        self._spawn("cometbft", processes.cometbft_argv(self.home, self.cometbft, self.peers))
        self._wait("cometbft's RPC", lambda: self._answers(rpc))
        self._spawn("gateway", processes.gateway_argv(self.home))
        self._wait("the gateway", lambda: dial(settings.gateway_listen, 0.5) is None)
        self.say(
            f"node {self.home.moniker()} ({self.home.peer_address()}) is running: "
            f"RPC {settings.node_rpc}, gateway {settings.gateway_listen}, logs in {self.home.log_dir}"
        )

    @staticmethod
    def _answers(rpc: CometRPC) -> bool:
        try:
            rpc.status()
            return True
        except (NodeUnavailable, RPCError):
            return False

    def stop(self, timeout: float = 15) -> None:
        """Gateway, then cometbft, then the app: SIGTERM, then SIGKILL after `timeout`."""
        for which in reversed(processes.PARTS):
            proc = self.children.get(which)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- the foreground loop -----------------------------------------------------------------

    def _report_peers(self, rpc: CometRPC, peers: list[str], reported: dict[str, str | None]) -> None:
        """Say once when a persistent peer is not connected (and why a dial fails), and when it is."""
        if not peers:
            return
        try:
            info = rpc.call("net_info")
        except (NodeUnavailable, RPCError):
            return
        connected = {p["node_info"]["id"] for p in info.get("peers", [])}
        for peer in peers:
            peer_id, _, address = peer.partition("@")
            state = None if peer_id in connected else f"not connected ({dial(address) or 'dials, no handshake yet'})"
            if reported.get(peer, "unset") != state:
                self.say(f"peer {peer}: {state or 'connected'}")
                reported[peer] = state

    def _configured_peers(self) -> list[str]:
        text = str(tomlkit.parse(self.home.config_toml.read_text())["p2p"]["persistent_peers"])
        return [p.strip() for p in text.split(",") if p.strip()]

    def run(self) -> int:
        """Start, then wait for a signal (exit 0) or a dead process (exit 1)."""
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start()
            except NodeStartError as err:
                self.say(f"error: {err}")
                return 1
            rpc = CometRPC(self.home.settings().node_rpc, timeout=2)
            peers = self.peers if self.peers is not None else self._configured_peers()
            reported: dict[str, str | None] = {}
            next_peer_check = time.monotonic() + PEER_CHECK_S
            while not self.stopping.wait(0.2):
                if (dead := self._dead()) is not None:
                    self.say(f"error: {self._failure(dead)}; stopping the node")
                    return 1
                if time.monotonic() >= next_peer_check:
                    self._report_peers(rpc, peers, reported)
                    next_peer_check = time.monotonic() + PEER_CHECK_S
            self.say("stopping: gateway, cometbft, app")
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.children:
                self.say("node stopped")
