"""One node on its own machine: `flchain init`, `flchain start`, `flchain show-node-id`, and the two
flchain processes `start` supervises beside cometbft (`flchain app`, `flchain gateway`)."""

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from cli import options
from client import endpoints

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def cmd_app(args: argparse.Namespace) -> int:
    from abci_app.application import FlchainApplication
    from abci_app.machine import StateMachine
    from abci_app.metrics import AppMetrics
    from abci_app.server import ABCIServer
    from abci_app.store import SqliteStore

    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    machine = StateMachine(SqliteStore(args.home / "state.sqlite"))
    logging.getLogger("abci_app").info("state at height %d, listening on %s", machine.height, args.address)
    metrics = AppMetrics()
    if args.metrics_listen:
        host, _, port = args.metrics_listen.rpartition(":")
        metrics.serve(host or endpoints.HOST, int(port))
    ABCIServer(FlchainApplication(machine, metrics)).run(args.address)
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.server import GatewayServer

    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    tls = (args.tls_cert.read_bytes(), args.tls_key.read_bytes()) if args.tls_cert else None
    server = GatewayServer(args.node, args.listen, tls=tls).start()
    logging.getLogger("gateway").info("serving gRPC on %s for node %s", args.listen, args.node)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from node.home import NodeHome
    from node.init import InitError, Listen, init_home

    home = NodeHome(args.home)
    listen = Listen(host=args.host, base_port=args.base_port, external_host=args.external_host)
    try:
        init_home(
            home,
            moniker=args.moniker,
            chain_id=args.chain_id,
            listen=listen,
            peers=args.peers,
            cometbft=args.cometbft,
            timeout_commit=args.timeout_commit,
            force=args.force,
        )
    except InitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"initialised node {args.moniker!r} of chain {args.chain_id!r} in {home.path}")
    print(f"node ID (peers dial it): {home.peer_address()}")
    print("next: build the shared genesis (flchain genesis --help), copy it to config/genesis.json, flchain start")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from node.home import NodeHome
    from node.supervisor import NodeSupervisor

    return NodeSupervisor(NodeHome(args.home), args.cometbft, peers=args.peers, say=_say).run()


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_show_node_id(args: argparse.Namespace) -> int:
    from node.home import NodeHome

    home = NodeHome(args.home)
    print(home.peer_address())
    return 0


def _peers(text: str) -> list[str]:
    peers = [p.strip() for p in text.split(",") if p.strip()]
    for peer in peers:
        node_id, at, address = peer.partition("@")
        if not at or len(node_id) != 40 or ":" not in address:
            raise argparse.ArgumentTypeError(f"{peer!r} is not NODE_ID@HOST:PORT (see flchain show-node-id)")
    return peers


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from node.config import default_cometbft

    home = options.node_home()
    cometbft = argparse.ArgumentParser(add_help=False)
    cometbft.add_argument("--cometbft", type=Path, default=default_cometbft(), help="the CometBFT binary")

    init = sub.add_parser(
        "init", parents=[home, cometbft], help="create this machine's node home (keys, config, genesis)"
    )
    init.add_argument("moniker", help="a name for this node")
    init.add_argument("--chain-id", required=True, help="the network's chain id (the same on every node)")
    init.add_argument(
        "--host", default="0.0.0.0", help="address to listen on for peers, RPC, gateway (default 0.0.0.0)"
    )
    init.add_argument("--external-host", default="", help="the address other machines dial (default: --host)")
    init.add_argument(
        "--base-port", type=int, default=endpoints.BASE_PORT, help="p2p port; RPC +1, ABCI +2, gateway +3"
    )
    init.add_argument("--peers", type=_peers, default=[], help="persistent peers: NODE_ID@HOST:PORT,...")
    init.add_argument("--timeout-commit", default="500ms", help="CometBFT's timeout_commit (block pacing)")
    init.add_argument(
        "--force",
        action="store_true",
        help="wipe an existing node in the home first (config, data, app state, logs; keys stay)",
    )
    init.set_defaults(func=cmd_init)

    start = sub.add_parser(
        "start", parents=[home, cometbft], help="run this node (app, cometbft, gateway) until Ctrl-C"
    )
    start.add_argument(
        "--peers", type=_peers, default=None, help="persistent peers for this run (default: config.toml's)"
    )
    start.set_defaults(func=cmd_start)

    show = sub.add_parser("show-node-id", parents=[home], help="print NODE_ID@HOST:PORT for other nodes' --peers")
    show.set_defaults(func=cmd_show_node_id)

    app = sub.add_parser("app", help="run this node's ABCI application (CometBFT connects to it)")
    app.add_argument("--home", type=Path, required=True, help="folder of the app's state database")
    app.add_argument(
        "--address",
        default=endpoints.DEFAULT_ABCI,
        help=f"where CometBFT connects: tcp://host:port or unix:///path (default {endpoints.DEFAULT_ABCI})",
    )
    app.add_argument("--log-level", default="INFO")
    app.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics"
    )
    app.set_defaults(func=cmd_app)

    gateway = sub.add_parser("gateway", help="run this node's gRPC gateway for participants")
    gateway.add_argument(
        "--node",
        default=endpoints.DEFAULT_NODE,
        help=f"the node's CometBFT RPC address (default {endpoints.DEFAULT_NODE})",
    )
    gateway.add_argument(
        "--listen",
        default=endpoints.DEFAULT_GATEWAY,
        help=f"host:port to serve gRPC on (default {endpoints.DEFAULT_GATEWAY})",
    )
    gateway.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve TLS only (with --tls-key)")
    gateway.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    gateway.add_argument("--log-level", default="INFO")
    gateway.set_defaults(func=cmd_gateway)
