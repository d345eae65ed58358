"""`flchain localnet up|down|status`, and the flchain flavour of a Localnet (app, keys, genesis)."""
import argparse
import sys
from pathlib import Path

from abci_app.genesis import to_app_state
from flchain.v1 import types_pb2
from localnet import config as cfg
from localnet.genesis import localnet_genesis, participant_keys
from localnet.net import Localnet, LocalnetError

DEFAULT_PARTICIPANTS = 8


def app_command(index: int, node_home: Path, abci_address: str) -> list[str]:
    """The flchain app of node i: its SQLite state lives beside the node's CometBFT data."""
    return [sys.executable, "-m", "abci_app", "--home", str(node_home / "app"), "--address", abci_address]


def gateway_command(index: int, rpc_url: str, listen: str) -> list[str]:
    """Node i's participant gateway (gRPC), talking to that node's CometBFT RPC."""
    return [sys.executable, "-m", "gateway", "--node", rpc_url, "--listen", listen]


def keys_dir(home: Path) -> Path:
    return home / "keys"


def start(home: Path = cfg.DEFAULT_HOME, validators: int = cfg.DEFAULT_VALIDATORS,
          participants: int = DEFAULT_PARTICIPANTS, bonded_at_genesis: int = 0,
          base_port: int = cfg.BASE_PORT, fresh: bool = False, params: types_pb2.Params | None = None,
          model: list | None = None, **init_options) -> Localnet:
    """Create the localnet if needed (participant keys, genesis, node configs), then start it.
    model: the initial global model as (name, float array) pairs; None: the digits MLP."""
    net = Localnet(home, validators=validators, base_port=base_port)
    if fresh or not any(home.glob("node[0-9]*")):
        keys = participant_keys(keys_dir(home), participants)
        app_state = to_app_state(localnet_genesis(keys, params, bonded_at_genesis, model))
        net.init(app_state, force=fresh, **init_options)
    net.up(app_command, gateway_command=gateway_command)
    return net


def _up(args) -> int:
    net = start(args.home, args.validators, args.participants, args.bonded, args.base_port, args.fresh)
    _print_status(net)
    print(f"\nparticipant keys: {keys_dir(args.home)}   logs: {net.log_dir}")
    print(f"try: flchain query params --node {net.ports(0).rpc_url}")
    print(f"     flchain participant --from participant-00 --keyring-dir {keys_dir(args.home)} --shard 0 "
          f"--shards {args.participants} --gateway {net.ports(0).gateway_address}")
    return 0


def _down(args) -> int:
    Localnet(args.home).down()
    print(f"localnet in {args.home} stopped")
    return 0


def _print_status(net: Localnet) -> None:
    print(f"{'node':<5} {'rpc':<24} {'gateway (gRPC)':<17} {'running':<8} {'height':>7}  app hash")
    for row in net.status():
        running = "yes" if row["running"] else "no"
        print(f"{row['index']:<5} {row['rpc']:<24} {row['gateway']:<17} {running:<8} {row['height'] or '-':>7}  "
              f"{row['app_hash'] or '-'}")


def _status(args) -> int:
    _print_status(Localnet(args.home))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("localnet", help="run N validators on this machine")
    parser.add_argument("--home", type=Path, default=cfg.DEFAULT_HOME, help="data folder (default .localnet/)")
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="create (first time) and start the localnet")
    up.add_argument("--validators", type=int, default=cfg.DEFAULT_VALIDATORS)
    up.add_argument("--participants", type=int, default=DEFAULT_PARTICIPANTS, help="funded participant keys")
    up.add_argument("--bonded", type=int, default=0, help="of those, how many are bonded at genesis")
    up.add_argument("--base-port", type=int, default=cfg.BASE_PORT)
    up.add_argument("--fresh", action="store_true", help="wipe an existing localnet first")
    up.set_defaults(func=_guard(_up))
    actions.add_parser("down", help="stop every process of the localnet").set_defaults(func=_guard(_down))
    actions.add_parser("status", help="height and app hash of each node").set_defaults(func=_guard(_status))


def _guard(command):
    """LocalnetError is a user-facing condition: one line, exit code 1."""
    def run(args) -> int:
        try:
            return command(args)
        except LocalnetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return run
