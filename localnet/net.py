"""`Localnet`: N validators on 127.0.0.1, each a cometbft process plus (optionally) its app process.

What runs is recorded in HOME/pids.json (localnet.processes starts, watches and stops each group),
so that one command can start a net and another stop it.
"""

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from client import endpoints
from client.metrics import scrape
from client.rpc import CometRPC, NodeUnavailable, RPCError
from localnet import config as cfg
from localnet.logs import tail
from localnet.processes import ProcessGroups, entry_for
from localnet.store import PORT_SPAN, STOP_GRACE_S, SeaweedStore, StoreError
from node import config as node_config
from node import genesis as node_genesis
from node.home import NodeHome
from node.init import InitError, Listen, init_home
from node.ports import dial, taken

AppCommand = Callable[[int, Path, endpoints.NodePorts], list[str]]
"""(node index, node home, node ports) -> argv of the app process."""
GatewayCommand = Callable[[int, Path], list[str]]
"""(node index, node home) -> argv of the gateway process."""

KEEP = object()
"""start_node's default: restart the app the way `up` started it (as recorded in pids.json)."""

LAYOUT_FILE = "localnet.json"


class LocalnetError(RuntimeError):
    """A node failed to start, died, or the net is not in the state asked for."""


def port_free(port: int) -> bool:
    return taken(endpoints.HOST, port) is None


class Localnet:
    """N validators in one data folder; see localnet.config for ports, layout and config values."""

    def __init__(
        self,
        home: Path = cfg.DEFAULT_HOME,
        validators: int | None = None,
        cometbft: Path = cfg.DEFAULT_COMETBFT,
        chain_id: str = cfg.DEFAULT_CHAIN_ID,
        base_port: int | None = None,
    ):
        """validators/base_port None: as `init` recorded them in HOME/localnet.json, else 4 / 26656."""
        self.home = Path(home).resolve()
        layout = self._read_json(self.home / LAYOUT_FILE) or {}
        self.validators = validators if validators is not None else layout.get("validators", cfg.DEFAULT_VALIDATORS)
        self.base_port = base_port if base_port is not None else layout.get("base_port", endpoints.BASE_PORT)
        self.cometbft = Path(cometbft)
        self.chain_id = chain_id
        self._processes = ProcessGroups()

    # -- layout ------------------------------------------------------------------------------

    def node_home(self, index: int) -> Path:
        return self.home / cfg.node_dir_name(index)

    def ports(self, index: int) -> endpoints.NodePorts:
        return endpoints.node_ports(index, self.base_port)

    def rpc(self, index: int, timeout: float = 10) -> CometRPC:
        return CometRPC(self.ports(index).rpc_url, timeout=timeout)

    @property
    def log_dir(self) -> Path:
        return self.home / cfg.LOG_DIR

    def log_path(self, index: int, which: str) -> Path:
        """which: "app", "cometbft" or "gateway"."""
        return self.log_dir / f"{cfg.node_dir_name(index)}-{which}.log"

    @property
    def pids_path(self) -> Path:
        return self.home / cfg.PIDS_FILE

    def store(self) -> SeaweedStore:
        """The localnet's object store (started by up(store=True)), for models federated by reference."""
        return SeaweedStore(self.home / cfg.STORE_DIR, self.base_port + cfg.STORE_OFFSET)

    @property
    def store_url(self) -> str | None:
        """The S3 endpoint participants use, if the store is running."""
        return self.store().url if self.store_pid() else None

    def store_pid(self) -> int | None:
        """The running object store's pid, if up(store=True) started one."""
        entry = self._pids().get("store")
        return entry["pid"] if entry and self._processes.alive(entry) else None

    # -- init --------------------------------------------------------------------------------

    def init(
        self,
        app_state: dict | None = None,
        *,
        block_max_bytes: int = node_config.BLOCK_MAX_BYTES,
        max_tx_bytes: int = node_config.MAX_TX_BYTES,
        timeout_commit: str = cfg.TIMEOUT_COMMIT,
        timeout_propose: str = node_config.TIMEOUT_PROPOSE,
        force: bool = False,
    ) -> None:
        """Write every node's home (`flchain init`'s), one shared genesis.json naming them all as
        validators, and each node's peers (all the others).

        An existing net is kept unless force=True (then its node folders and logs are deleted)."""
        if self.running():
            raise LocalnetError(f"the localnet in {self.home} is running; run down() first")
        existing = sorted(self.home.glob("node[0-9]*"))
        if existing and not force:
            raise LocalnetError(
                f"{self.home} already holds a localnet ({len(existing)} nodes); pass force=True to wipe it"
            )
        for path in existing + [self.log_dir, self.home / cfg.STORE_DIR]:
            shutil.rmtree(path, ignore_errors=True)
        for name in (cfg.PIDS_FILE, LAYOUT_FILE):
            (self.home / name).unlink(missing_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        homes = [NodeHome(self.node_home(i)) for i in range(self.validators)]
        try:
            for i, home in enumerate(homes):
                init_home(
                    home,
                    moniker=cfg.node_dir_name(i),
                    chain_id=self.chain_id,
                    listen=Listen(host=endpoints.HOST, base_port=self.ports(i).p2p),
                    app_state=app_state if app_state is not None else {},
                    cometbft=self.cometbft,
                    timeout_commit=timeout_commit,
                    timeout_propose=timeout_propose,
                    gossip_interval=cfg.LOOPBACK_GOSSIP_INTERVAL,
                    block_max_bytes=block_max_bytes,
                    max_tx_bytes=max_tx_bytes,
                )
        except (InitError, ValueError) as err:
            raise LocalnetError(str(err)) from None
        # One genesis naming every node as a validator, and each node peering with all the others.
        doc = node_genesis.read(homes[0].genesis)
        doc["validators"] = [home.validator() for home in homes]
        ids = [home.node_id() for home in homes]
        addresses = [f"{node_id}@{home.p2p_address()}" for node_id, home in zip(ids, homes)]
        for i, home in enumerate(homes):
            node_genesis.write(home.genesis, doc)
            node_config.set_persistent_peers(home.config_toml, [a for j, a in enumerate(addresses) if j != i])
        self.log_dir.mkdir(exist_ok=True)
        layout = {
            "validators": self.validators,
            "base_port": self.base_port,
            "chain_id": self.chain_id,
            "node_ids": ids,
            "block_max_bytes": block_max_bytes,
            "max_tx_bytes": max_tx_bytes,
            "nodes": [
                {
                    "home": str(self.node_home(i)),
                    "p2p": self.ports(i).p2p,
                    "rpc": self.ports(i).rpc,
                    "abci": self.ports(i).abci,
                }
                for i in range(self.validators)
            ],
        }
        (self.home / LAYOUT_FILE).write_text(json.dumps(layout, indent=2) + "\n")

    # -- processes ---------------------------------------------------------------------------

    def _read_json(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _pids(self) -> dict:
        return self._read_json(self.pids_path) or {"nodes": {}}

    def _write_pids(self, pids: dict) -> None:
        tmp = self.pids_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids, indent=2) + "\n")
        tmp.replace(self.pids_path)

    def _record(self, index: int, which: str, entry: dict | None) -> None:
        pids = self._pids()
        pids["nodes"].setdefault(str(index), {})[which] = entry
        self._write_pids(pids)

    def _spawn(self, index: int, which: str, argv: list[str]) -> dict:
        entry = self._processes.spawn(argv, self.log_path(index, which), self.node_home(index))
        self._record(index, which, entry)
        return entry

    def running(self) -> bool:
        """Whether any recorded process is alive."""
        pids = self._pids()
        nodes = [entry for node in pids["nodes"].values() for entry in node.values()]
        return any(self._processes.alive(entry) for entry in nodes + [pids.get("store")])

    # -- up / down ---------------------------------------------------------------------------

    def up(
        self,
        app_command: AppCommand | None = None,
        *,
        gateway_command: GatewayCommand | None = None,
        timeout: float = 60,
        min_height: int = 2,
        store: bool = False,
    ) -> None:
        """Start the object store (if asked), every node's app (if any) then its cometbft; wait until
        all reach `min_height`; then start every node's gateway (if any) and wait until it listens.

        app_command None: cometbft runs its builtin `kvstore` app (for tests of the net itself).
        On failure everything started is stopped again and the error names the log to read."""
        if not self.node_home(0).joinpath("config", "genesis.json").exists():
            raise LocalnetError(f"no localnet in {self.home}; run init() first")
        if self.running():
            raise LocalnetError(f"the localnet in {self.home} is already running; run down() first")
        busy = [
            p
            for i in range(self.validators)
            for p in (
                (self.ports(i).p2p, self.ports(i).rpc, self.ports(i).cometbft_metrics)
                + ((self.ports(i).abci, self.ports(i).app_metrics) if app_command else ())
                + ((self.ports(i).gateway,) if gateway_command else ())
            )
            if not port_free(p)
        ]
        if store:
            first = self.base_port + cfg.STORE_OFFSET
            busy += [p for p in range(first, first + PORT_SPAN) if not port_free(p)]
        if busy:
            raise LocalnetError(
                f"ports already in use on {endpoints.HOST}: {busy} (another localnet? pick another base_port)"
            )
        self._write_pids({"nodes": {}})
        try:
            deadline = time.monotonic() + timeout
            if store:
                self._start_store(timeout)
            if app_command is not None:
                for i in range(self.validators):
                    self._spawn(i, "app", list(map(str, app_command(i, self.node_home(i), self.ports(i)))))
                for i in range(self.validators):
                    self._wait_port(i, "app", self.ports(i).abci, deadline, timeout)
            for i in range(self.validators):
                self._spawn(i, "cometbft", self._cometbft_argv(i, builtin_app=app_command is None))
            self.wait_for_height(min_height, timeout=max(1.0, deadline - time.monotonic()))
            if gateway_command is not None:
                for i in range(self.validators):
                    self._spawn(i, "gateway", self._gateway_argv(i, gateway_command))
                for i in range(self.validators):
                    self._wait_port(i, "gateway", self.ports(i).gateway, deadline, timeout)
        except BaseException:
            self.down()
            raise

    def _start_store(self, timeout: float) -> None:
        store = self.store()
        try:
            store.start()
            pids = self._pids()
            pids["store"] = entry_for(store.pid, store.argv())
            self._write_pids(pids)
            store.wait_ready(timeout)
        except StoreError as err:
            raise LocalnetError(f"{err}; read {store.log_path}") from None

    def _gateway_argv(self, index: int, command: GatewayCommand) -> list[str]:
        return list(map(str, command(index, self.node_home(index))))

    def _cometbft_argv(self, index: int, builtin_app: bool) -> list[str]:
        argv = [str(self.cometbft), "start", "--home", str(self.node_home(index))]
        return argv + ["--proxy_app", "kvstore"] if builtin_app else argv

    def _check_alive(self, index: int, parts: tuple[str, ...] = ("app", "cometbft")) -> None:
        node = self._pids()["nodes"].get(str(index), {})
        for which in parts:
            entry = node.get(which)
            if entry and not self._processes.alive(entry):
                log = self.log_path(index, which)
                raise LocalnetError(
                    f"node {index}'s {which} process (pid {entry['pid']}) exited; read {log} (last lines: {tail(log)})"
                )

    def _wait_port(self, index: int, which: str, port: int, deadline: float, timeout: float) -> None:
        while dial(f"{endpoints.HOST}:{port}", timeout=0.5) is not None:
            self._check_alive(index, (which,))
            if time.monotonic() > deadline:
                raise LocalnetError(
                    f"node {index}'s {which} did not listen on {endpoints.HOST}:{port} within "
                    f"{timeout}s; read {self.log_path(index, which)}"
                )
            time.sleep(0.1)

    def wait_for_height(self, height: int, timeout: float = 30, nodes: list[int] | None = None) -> dict[int, int]:
        """Wait until every node in `nodes` (default all) reports height >= `height`; {index: height}.

        Fails early, naming the log, if a node's recorded process dies meanwhile."""
        nodes = list(range(self.validators)) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        heights: dict[int, int] = {}
        errors: dict[int, str] = {}
        while True:
            for i in nodes:
                self._check_alive(i)
                try:
                    heights[i] = self.rpc(i, timeout=2).latest_height()
                    errors.pop(i, None)
                except (NodeUnavailable, RPCError) as err:
                    heights.pop(i, None)
                    errors[i] = f"unreachable: {err}"
            if all(heights.get(i, -1) >= height for i in nodes):
                return heights
            if time.monotonic() > deadline:
                slow = min(i for i in nodes if heights.get(i, -1) < height)
                seen = errors.get(slow) or f"at height {heights[slow]}"
                raise LocalnetError(
                    f"node {slow} did not reach height {height} within {timeout:.0f}s "
                    f"({seen}); read {self.log_path(slow, 'cometbft')}"
                )
            time.sleep(0.2)

    def down(self, timeout: float = 10) -> None:
        """Stop every recorded process (cometbft first, then apps) and forget them. Idempotent."""
        nodes = self._pids()["nodes"].values()
        deadline = time.monotonic() + timeout
        self._processes.stop([n.get("gateway") for n in nodes if n.get("gateway")], timeout)
        self._processes.stop(
            [n.get("cometbft") for n in nodes if n.get("cometbft")], max(2.0, deadline - time.monotonic())
        )
        self._processes.stop([n.get("app") for n in nodes if n.get("app")], max(2.0, deadline - time.monotonic()))
        store = self._pids().get("store")
        if store:  # last: a participant may still be storing what the chain's last round needs
            self._processes.stop([store], STOP_GRACE_S)  # weed's own shutdown takes ~15 s; its data is safe by then
        self.pids_path.unlink(missing_ok=True)

    # -- single nodes ------------------------------------------------------------------------

    def stop_node(self, index: int, which: str = "both", timeout: float = 10) -> None:
        """Stop node `index`'s "gateway", "cometbft", "app" or "both" (cometbft then app; a gateway stays
        unless named: it rides out its node's restart); the record stays for start_node."""
        if which not in ("gateway", "app", "cometbft", "both"):
            raise ValueError(f"which must be 'gateway', 'app', 'cometbft' or 'both', not {which!r}")
        node = self._pids()["nodes"].get(str(index), {})
        for part in ("gateway", "cometbft", "app"):
            if which in (part, "both") and node.get(part):
                self._processes.stop([node[part]], timeout)

    def start_node(self, index: int, app_command: AppCommand | None | object = KEEP, *, timeout: float = 30) -> None:
        """Start whatever of node `index` is not running and wait until its RPC answers.

        app_command KEEP (default): the app argv `up` recorded (none: builtin kvstore);
        None: builtin kvstore; a callable: that app."""
        node = self._pids()["nodes"].get(str(index), {})
        if app_command is KEEP:
            app_argv = (node.get("app") or {}).get("argv")
        elif callable(app_command):
            app_argv = list(map(str, app_command(index, self.node_home(index), self.ports(index))))
        else:
            app_argv = None
        deadline = time.monotonic() + timeout
        if app_argv is not None and not self._processes.alive(node.get("app")):
            # CometBFT never reconnects to a restarted app: it shuts itself down when the app's
            # connection drops, and its shutdown can linger (RPC still up, no blocks); stop it, so
            # that a fresh one starts below and replays from the app's height
            if node.get("cometbft"):
                self._processes.stop([node["cometbft"]], timeout=10)
            self._spawn(index, "app", app_argv)
            self._wait_port(index, "app", self.ports(index).abci, deadline, timeout)
        if not self._processes.alive(node.get("cometbft")):
            self._spawn(index, "cometbft", self._cometbft_argv(index, builtin_app=app_argv is None))
        rpc = self.rpc(index, timeout=2)
        while True:
            self._check_alive(index)
            try:
                rpc.status()
                break
            except (NodeUnavailable, RPCError):
                if time.monotonic() > deadline:
                    raise LocalnetError(
                        f"node {index}'s RPC ({rpc.url}) did not answer within {timeout}s; "
                        f"read {self.log_path(index, 'cometbft')}"
                    ) from None
                time.sleep(0.2)
        gateway = node.get("gateway")
        if gateway and not self._processes.alive(gateway):
            self._spawn(index, "gateway", gateway["argv"])
            self._wait_port(index, "gateway", self.ports(index).gateway, deadline, timeout)

    # -- status ------------------------------------------------------------------------------

    def status(self) -> list[dict]:
        """Per node: index, rpc, gateway, running (cometbft alive), app_running, gateway_running, height,
        app_hash, catching_up, and app_metrics (the app's Prometheus samples: flchain_round, ...)."""
        nodes = self._pids()["nodes"]
        report = []
        for i in range(self.validators):
            node = nodes.get(str(i), {})
            row = {
                "index": i,
                "rpc": self.ports(i).rpc_url,
                "home": str(self.node_home(i)),
                "running": self._processes.alive(node.get("cometbft")),
                "app_running": self._processes.alive(node.get("app")) if node.get("app") else None,
                "gateway": self.ports(i).gateway_address,
                "gateway_running": self._processes.alive(node.get("gateway")) if node.get("gateway") else None,
                "pids": {k: v["pid"] for k, v in node.items() if v},
                "height": None,
                "app_hash": None,
                "catching_up": None,
                "error": None,
                "app_metrics": scrape(self.ports(i).app_metrics_url) if node.get("app") else {},
            }
            try:
                sync = self.rpc(i, timeout=2).status()["sync_info"]
                row.update(
                    height=int(sync["latest_block_height"]),
                    app_hash=sync["latest_app_hash"],
                    catching_up=bool(sync["catching_up"]),
                )
            except (NodeUnavailable, RPCError) as err:
                row["error"] = str(err)
            report.append(row)
        return report
