"""`flchain genesis ...`: build a network's shared genesis.json, as the operators of its nodes agree it.

One operator collects the others' validator entries (`show-validator`) and participant addresses,
adds them to the genesis in their node home, and sends the file to everyone, who copy it to
HOME/config/genesis.json. `validate` says whether a chain can start from it."""

import argparse
import json
import sys
from pathlib import Path

from abci_app.address import from_bech32
from cli import options
from node import genesis as gen
from node.home import NodeHome


def _edit(args: argparse.Namespace, change) -> int:
    home = NodeHome(args.home)
    try:
        doc = change(gen.read(home.genesis))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    gen.write(home.genesis, doc)
    return 0


def _show_validator(args: argparse.Namespace) -> int:
    print(json.dumps(NodeHome(args.home).validator(args.power)))
    return 0


def _add_validator(args: argparse.Namespace) -> int:
    source = Path(args.entry)
    text = source.read_text() if source.exists() else args.entry
    try:
        entry = json.loads(text)
    except json.JSONDecodeError:
        print(
            f"error: {args.entry!r} is neither a file nor the JSON of `flchain genesis show-validator`", file=sys.stderr
        )
        return 1
    return _edit(args, lambda doc: gen.add_validator(doc, entry))


def _add_account(args: argparse.Namespace) -> int:
    try:
        address = from_bech32(args.address)
    except ValueError as err:
        print(f"error: bad address {args.address!r}: {err}", file=sys.stderr)
        return 1
    return _edit(args, lambda doc: gen.add_account(doc, address, args.balance, args.bond))


def _set_model(args: argparse.Namespace) -> int:
    model = options.genesis_model(args.client, args.model)
    return _edit(args, lambda doc: gen.set_model(doc, model, options.store_client(args)))


def _assignment(text: str) -> tuple[str, int]:
    name, eq, value = text.partition("=")
    if not eq:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: params are integers") from None


def _set_params(args: argparse.Namespace) -> int:
    return _edit(args, lambda doc: gen.set_params(doc, dict(args.assignments)))


def _validate(args: argparse.Namespace) -> int:
    home = NodeHome(args.home)
    try:
        doc = gen.read(home.genesis)
        gen.validate(doc)
    except ValueError as err:
        print(f"error: {home.genesis}: {err}", file=sys.stderr)
        return 1
    state = gen.app_state(doc)
    print(
        f"{home.genesis} is valid: chain {doc['chain_id']}, {len(doc['validators'])} validators, "
        f"{len(state.accounts)} accounts, {len(state.participants)} bonded participants, "
        f"{sum(len(t.values) // 4 for t in state.model)} model weights"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    home = options.node_home()
    parser = sub.add_parser("genesis", help="build the network's shared genesis.json")
    actions = parser.add_subparsers(dest="action", required=True)

    show = actions.add_parser("show-validator", parents=[home], help="print this node's validator entry (JSON)")
    show.add_argument("--power", type=int, default=10, help="voting power (default 10)")
    show.set_defaults(func=_show_validator)

    add_validator = actions.add_parser("add-validator", parents=[home], help="add another node's validator entry")
    add_validator.add_argument("entry", help="a file or the JSON printed by `flchain genesis show-validator`")
    add_validator.set_defaults(func=_add_validator)

    add_account = actions.add_parser("add-account", parents=[home], help="fund a participant's account")
    add_account.add_argument("address", help="bech32 address (flchain keys show NAME)")
    add_account.add_argument("balance", type=int, help="tokens")
    add_account.add_argument("--bond", type=int, default=0, help="also bond this stake at genesis")
    add_account.set_defaults(func=_add_account)

    model = actions.add_parser(
        "set-model",
        parents=[home, options.object_store()],
        help="the initial global model (above max_inline_model_bytes: stored in --store, its digest in genesis)",
    )
    model.add_argument(
        "--client",
        metavar="MODULE:CLIENT_FN",
        help="from this Flower client's get_parameters (default: a built-in digits model, --model)",
    )
    model.add_argument("--model", choices=options.MODEL_KINDS, default="mlp", help="the built-in digits model")
    model.set_defaults(func=_set_model)

    params = actions.add_parser("set-params", parents=[home], help="change params: NAME=VALUE ...")
    params.add_argument("assignments", nargs="+", type=_assignment, metavar="NAME=VALUE")
    params.set_defaults(func=_set_params)

    actions.add_parser("validate", parents=[home], help="check that a chain can start from it").set_defaults(
        func=_validate
    )
