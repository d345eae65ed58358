"""`flchain query ...`: read chain state with ABCI queries through a node's CometBFT RPC (Cosmos style)."""

import argparse
import dataclasses
import json
import sys

from abci_app import query_paths as qp
from abci_app.codes import code_name
from cli import options, output
from client.rpc import CometRPC

TX = "tx"


def included_tx_fields(included) -> dict:
    """A tx's block result for printing: its code's name beside the number."""
    name = code_name(included.code, included.codespace) if included.code else "ok"
    return {**dataclasses.asdict(included), "code_name": name or included.codespace}


def describe_included(included) -> str:
    if included.ok:
        return f"tx {included.hash} committed at height {included.height}: code 0 (ok)"
    fields = included_tx_fields(included)
    return (
        f"tx {included.hash} refused in its block at height {included.height}: "
        f"code {included.code} {fields['code_name']}: {included.log}"
    )


def show_included(included, output: str) -> int:
    """Print a tx's block result (text or JSON); the exit code says whether the block took it."""
    print(json.dumps(included_tx_fields(included), indent=2) if output == "json" else describe_included(included))
    return 0 if included.ok else 1


def cmd_query_tx(args: argparse.Namespace) -> int:
    if not args.arg:
        raise SystemExit("flchain query tx needs a tx hash (hex)")
    included = CometRPC(args.node).tx(args.arg)
    if included is None:
        print(f"tx {args.arg} is in no block (not committed yet, dropped, or the node does not index txs)")
        return 1
    return show_included(included, args.output)


def cmd_query(args: argparse.Namespace) -> int:
    if args.what == TX:
        return cmd_query_tx(args)
    if args.what in qp.BY_ADDRESS and not args.arg:
        raise SystemExit(f"flchain query {args.what} needs an address (flc1...)")
    if args.arg and args.what not in (*qp.BY_ADDRESS, qp.ROUND):
        raise SystemExit(f"flchain query {args.what} takes no argument")
    path = qp.path(args.what, args.arg)
    result = CometRPC(args.node).abci_query(path)
    if result.code:
        print(f"query {path} failed (code {result.code}): {result.log}", file=sys.stderr)
        return 1
    data = output.readable(qp.ANSWERS[args.what].FromString(result.value))
    output.show(data if args.output == "json" else output.summarize_tensors(data), args.output)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("query", parents=[options.node()], help="read chain state (ABCI query)")
    q.add_argument("what", choices=sorted([*qp.ANSWERS, TX]))
    q.add_argument("arg", nargs="?", help="address for participant/account, id for round, hash for tx")
    q.add_argument("--output", "-o", choices=["text", "json"], default="text")
    q.set_defaults(func=cmd_query)
