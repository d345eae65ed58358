"""Run a gateway beside a node: `python -m gateway --node http://127.0.0.1:26657 --listen 127.0.0.1:26659`."""
import argparse
import logging
import signal
import threading

from gateway.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--node", default="http://127.0.0.1:26657", help="the node's CometBFT RPC address")
    parser.add_argument("--listen", default="127.0.0.1:26659", help="host:port to serve gRPC on")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server, feed = serve(args.node, args.listen)
    logging.getLogger("gateway").info("serving gRPC on %s for node %s", args.listen, args.node)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    feed.stop()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
