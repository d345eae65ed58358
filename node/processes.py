"""The command lines of a node's three processes, read from its home; `flchain start` and the
localnet both run exactly these."""

import sys
from pathlib import Path

from node.home import NodeHome

PARTS = ("app", "cometbft", "gateway")  # the order they start in; they stop in reverse


def app_argv(home: NodeHome) -> list[str]:
    settings = home.settings()
    argv = [sys.executable, "-m", "cli", "app", "--home", str(home.app_dir), "--address", settings.abci]
    return argv + (["--metrics-listen", settings.app_metrics_listen] if settings.app_metrics_listen else [])


def cometbft_argv(home: NodeHome, cometbft: Path, peers: list[str] | None = None) -> list[str]:
    """peers (id@host:port) replace config.toml's persistent_peers for this run."""
    argv = [str(cometbft), "start", "--home", str(home.path)]
    return argv + (["--p2p.persistent_peers", ",".join(peers)] if peers else [])


def gateway_argv(home: NodeHome) -> list[str]:
    settings = home.settings()
    argv = [sys.executable, "-m", "cli", "gateway", "--node", settings.node_rpc, "--listen", settings.gateway_listen]
    if settings.tls_cert and settings.tls_key:
        argv += ["--tls-cert", settings.tls_cert, "--tls-key", settings.tls_key]
    return argv
