"""`flchain query ...`: read chain state with ABCI queries through a node's CometBFT RPC (Cosmos style)."""

import argparse
import sys

from abci_app import query_paths as qp
from cli import options, output
from client.rpc import CometRPC


def cmd_query(args: argparse.Namespace) -> int:
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
    q.add_argument("what", choices=sorted(qp.ANSWERS))
    q.add_argument("arg", nargs="?", help="address for participant/account, id for round")
    q.add_argument("--output", "-o", choices=["text", "json"], default="text")
    q.set_defaults(func=cmd_query)
