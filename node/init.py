"""`flchain init`: create a node's home with CometBFT's keys and config, flchain's settings and a
genesis that names this node as its only validator (operators then merge their validators into one)."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from client import endpoints
from node import config
from node import genesis as gen
from node.home import NodeHome, NodeSettings
from node.ports import LOOPBACK, dialable


class InitError(RuntimeError):
    """The home exists already, or cometbft failed."""


@dataclass(frozen=True)
class Listen:
    """Where a node's services listen. host serves peers, participants and scrapers; the app's ABCI
    port stays on loopback (only its own cometbft dials it)."""

    host: str = "0.0.0.0"
    base_port: int = endpoints.BASE_PORT
    external_host: str = ""  # the address peers dial, when host is 0.0.0.0 or behind NAT

    @property
    def ports(self) -> endpoints.NodePorts:
        return endpoints.node_ports(0, self.base_port)

    def at(self, port: int, host: str | None = None) -> str:
        return f"{host or self.host}:{port}"


def run_cometbft(cometbft: Path, *args: str) -> str:
    if not Path(cometbft).exists():
        raise InitError(f"no cometbft binary at {cometbft} (run scripts/setup.sh, or pass --cometbft)")
    result = subprocess.run([str(cometbft), *args], capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise InitError(
            f"`cometbft {' '.join(args)}` failed ({result.returncode}): {' '.join(result.stderr.split())[-500:]}"
        )
    return result.stdout


def init_home(
    home: NodeHome,
    *,
    moniker: str,
    chain_id: str,
    listen: Listen = Listen(),
    app_state: dict | None = None,
    peers: list[str] | None = None,
    cometbft: Path | None = None,
    timeout_commit: str = config.TIMEOUT_COMMIT,
    timeout_propose: str = config.TIMEOUT_PROPOSE,
    gossip_interval: str | None = None,
    block_max_bytes: int = config.BLOCK_MAX_BYTES,
    max_tx_bytes: int = config.MAX_TX_BYTES,
    force: bool = False,
) -> None:
    """Write HOME/config (keys, config.toml, flchain.toml, genesis.json) and empty data folders.

    app_state None: flchain's default params and nothing else (accounts and model come later)."""
    node_parts = [home.config_dir, home.path / "data", home.app_dir, home.log_dir]  # never the keyring beside them
    existing = [part for part in node_parts if part.exists()]
    if existing:
        if not force:
            raise InitError(f"{home.path} already holds a node; pick another --home or pass --force to wipe it")
        for part in existing:
            shutil.rmtree(part)
    run_cometbft(cometbft or config.default_cometbft(), "init", "--home", str(home.path))
    ports = listen.ports
    abci = f"tcp://{LOOPBACK}:{ports.abci}"  # only the node's own cometbft dials its app
    config.edit_config_toml(
        home.config_toml,
        moniker=moniker,
        abci_address=abci,
        p2p_listen=listen.at(ports.p2p),
        rpc_listen=listen.at(ports.rpc),
        metrics_listen=listen.at(ports.cometbft_metrics),
        external_address=listen.at(ports.p2p, listen.external_host) if listen.external_host else "",
        peers=peers,
        max_tx_bytes=max_tx_bytes,
        timeout_commit=timeout_commit,
        timeout_propose=timeout_propose,
        gossip_interval=gossip_interval,
    )
    home.write_settings(
        NodeSettings(
            abci=abci,
            node_rpc=f"http://{dialable(listen.host)}:{ports.rpc}",  # the gateway beside it
            gateway_listen=listen.at(ports.gateway),
            app_metrics_listen=listen.at(ports.app_metrics),
        )
    )
    doc = config.edit_genesis(
        gen.read(home.genesis),
        chain_id=chain_id,
        app_state=gen.empty_app_state() if app_state is None else app_state,
        block_max_bytes=block_max_bytes,
        max_tx_bytes=max_tx_bytes,
    )
    doc["validators"] = [home.validator()]
    gen.write(home.genesis, doc)
    home.app_dir.mkdir(exist_ok=True)
