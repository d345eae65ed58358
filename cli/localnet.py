"""`flchain localnet up|down|status`: N validators on this machine (see localnet/)."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from cli import options
from client import endpoints
from localnet import Localnet, LocalnetError, launch
from localnet import config as cfg


def _up(args: argparse.Namespace) -> int:
    net = launch.start(
        args.home,
        args.validators,
        args.participants,
        args.bonded,
        args.base_port,
        args.fresh,
        model=options.genesis_model(args.client, args.model),
        store=args.store,
    )
    _print_status(net)
    print(f"\nparticipant keys: {launch.keys_dir(args.home)}   logs: {net.log_dir}")
    if net.store_url:
        print(f"object store (S3): {net.store_url}   data and log: {net.store().data_dir}")
    print(f"try: flchain query params --node {net.ports(0).rpc_url}")
    client = f" --client {args.client}" if args.client else f" --model {args.model}"
    store = f" --store {net.store_url}" if net.store_url else ""
    print(
        f"     flchain participant --from participant-00 --keyring-dir {launch.keys_dir(args.home)}{client} "
        f"--shard 0 --shards {args.participants} --gateway {net.ports(0).gateway_address}{store}"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    Localnet(args.home).down()
    print(f"localnet in {args.home} stopped")
    return 0


def _print_status(net: Localnet) -> None:
    print(
        f"{'node':<5} {'rpc':<24} {'gateway (gRPC)':<17} {'running':<8} {'height':>7} {'round':>6} {'phase':<8} "
        f"{'bonded':>6} {'stake':>8}  app hash"
    )
    for row in net.status():
        running = "yes" if row["running"] else "no"
        m = row["app_metrics"]
        phase = PHASES.get(int(m["flchain_round_phase"]), "?") if "flchain_round_phase" in m else "-"
        print(
            f"{row['index']:<5} {row['rpc']:<24} {row['gateway']:<17} {running:<8} {row['height'] or '-':>7} "
            f"{_int(m.get('flchain_round')):>6} {phase:<8} {_int(m.get('flchain_participants_bonded')):>6} "
            f"{_int(m.get('flchain_total_stake')):>8}  {row['app_hash'] or '-'}"
        )


PHASES = {1: "select", 2: "propose", 3: "vote", 4: "tally", 5: "reveal-u", 6: "reveal-b", 7: "aggr"}  # fits the column


def _int(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def _status(args: argparse.Namespace) -> int:
    net = Localnet(args.home)
    _print_status(net)
    if net.store_pid():
        print(f"object store (S3): {net.store_url}   pid {net.store_pid()}   data and log: {net.store().data_dir}")
    return 0


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """LocalnetError is a user-facing condition: one line, exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LocalnetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    return run


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("localnet", help="run N validators on this machine")
    parser.add_argument("--home", type=Path, default=cfg.DEFAULT_HOME, help="data folder (default .localnet/)")
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="create (first time) and start the localnet")
    up.add_argument("--validators", type=int, default=cfg.DEFAULT_VALIDATORS)
    up.add_argument("--participants", type=int, default=launch.DEFAULT_PARTICIPANTS, help="funded participant keys")
    up.add_argument("--bonded", type=int, default=0, help="of those, how many are bonded at genesis")
    up.add_argument("--base-port", type=int, default=endpoints.BASE_PORT)
    up.add_argument("--fresh", action="store_true", help="wipe an existing localnet first")
    up.add_argument(
        "--client",
        metavar="MODULE:CLIENT_FN",
        help="take the genesis model from this Flower client's get_parameters (default: the digits MLP)",
    )
    up.add_argument("--model", choices=options.MODEL_KINDS, default="mlp", help="the built-in digits model")
    up.add_argument(
        "--store",
        action="store_true",
        help="also run an object store (SeaweedFS, S3 API) for models above the chain's inline limit "
        "(max_inline_model_bytes): their updates and global model go there, their digests on chain",
    )
    up.set_defaults(func=_guard(_up))
    actions.add_parser("down", help="stop every process of the localnet").set_defaults(func=_guard(_down))
    actions.add_parser("status", help="height and app hash of each node").set_defaults(func=_guard(_status))
