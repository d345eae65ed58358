"""`flchain app` and `flchain gateway`: the two flchain processes of a node, beside its cometbft."""

import argparse
import logging
import signal
import threading
from pathlib import Path

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
    from gateway.server import serve

    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    tls = (args.tls_cert.read_bytes(), args.tls_key.read_bytes()) if args.tls_cert else None
    server, feed = serve(args.node, args.listen, tls=tls)
    logging.getLogger("gateway").info("serving gRPC on %s for node %s", args.listen, args.node)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    feed.stop()
    server.stop(grace=2).wait()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
