"""Run the flchain ABCI application: `python -m abci_app --home DIR --address tcp://127.0.0.1:26658`."""
import argparse
import logging
from pathlib import Path

from abci_app.application import FlchainApplication
from abci_app.machine import StateMachine
from abci_app.server import ABCIServer
from abci_app.store import SqliteStore


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m abci_app", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="folder of the app's state database")
    parser.add_argument("--address", default="tcp://127.0.0.1:26658",
                        help="where CometBFT connects: tcp://host:port or unix:///path")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    machine = StateMachine(SqliteStore(args.home / "state.sqlite"))
    logging.getLogger("abci_app").info("state at height %d, listening on %s", machine.height, args.address)
    ABCIServer(FlchainApplication(machine)).run(args.address)


if __name__ == "__main__":
    main()
