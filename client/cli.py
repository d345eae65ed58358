"""`flchain`: the command line, in the style of a Cosmos chain's CLI.

  flchain localnet up|down|status          run N validators on this machine
  flchain keys add NAME | list             ed25519 keys in a keyring folder
  flchain tx bond|unbond|vote ...          sign and broadcast a tx
  flchain query params|round|participant|participants|account|model|candidate [--output json]
  flchain simulate run|sweep                in-process federations and parameter studies
"""
import argparse
import base64
import json
import sys
from pathlib import Path

from google.protobuf import json_format

from abci_app.address import to_bech32
from client import tx as txb
from client.keys import Key
from client.rpc import CometRPC, NodeUnavailable, RPCError
from flchain.v1 import query_pb2, types_pb2
from client.simulator.cli import add_parser as add_simulate_parser
from localnet.commands import add_parser as add_localnet_parser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NODE = "http://127.0.0.1:26657"
DEFAULT_KEYRING = Path.home() / ".flchain" / "keys"

QUERIES = {
    "params": ("/params", types_pb2.Params),
    "round": ("/round", types_pb2.Round),
    "participant": ("/participant", query_pb2.ParticipantInfo),
    "participants": ("/participants", query_pb2.ParticipantList),
    "account": ("/account", types_pb2.Account),
    "model": ("/model", types_pb2.GlobalModel),
    "candidate": ("/candidate", types_pb2.Candidate),
}


def _readable(message) -> dict:
    """Protobuf -> JSON-ready dict with bech32 addresses instead of base64 bytes."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)

    def fix(node, field=""):
        if isinstance(node, dict):
            return {k: fix(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v, field) for v in node]
        if field in {"address", "proposers", "voters", "submitted", "voter", "contributors", "proposer"}:
            return to_bech32(base64.b64decode(node))
        return node
    return fix(data)


def _summarize_tensors(data: dict) -> dict:
    """Text output shows tensors as name/shape, not megabytes of base64."""
    for field in ("tensors", "delta"):
        if field in data:
            data[field] = [f"{t['name']} {t.get('shape', [])}" for t in data[field]]
    return data


def _print(data: dict, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
        return

    def emit(node, indent=0):
        pad = "  " * indent
        for key, value in node.items():
            if isinstance(value, dict):
                print(f"{pad}{key}:")
                emit(value, indent + 1)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                print(f"{pad}{key}:")
                for item in value:
                    print(f"{pad}- " + ", ".join(f"{k}: {v}" for k, v in item.items()))
            elif isinstance(value, list):
                print(f"{pad}{key}: " + ", ".join(map(str, value)))
            else:
                print(f"{pad}{key}: {value}")
    emit(data)


def cmd_query(args) -> int:
    path, cls = QUERIES[args.what]
    if args.what in ("participant", "account"):
        if not args.arg:
            raise SystemExit(f"flchain query {args.what} needs an address (flc1...)")
        path += f"/{args.arg}"
    elif args.what == "round" and args.arg:
        path += f"/{args.arg}"
    result = CometRPC(args.node).abci_query(path)
    if result.code:
        print(f"query {path} failed (code {result.code}): {result.log}", file=sys.stderr)
        return 1
    data = _readable(cls.FromString(result.value))
    _print(data if args.output == "json" else _summarize_tensors(data), args.output)
    return 0


def _keyring(args) -> Path:
    return Path(args.keyring_dir)


def cmd_keys(args) -> int:
    folder = _keyring(args)
    if args.action == "add":
        path = folder / f"{args.name}.json"
        if path.exists():
            print(f"key {args.name!r} already exists at {path}", file=sys.stderr)
            return 1
        key = Key.generate(args.name)
        key.save(path)
        print(f"{args.name}\t{key.bech32}\t(saved to {path})")
    else:
        for path in sorted(folder.glob("*.json")):
            key = Key.load(path)
            print(f"{key.name}\t{key.bech32}")
    return 0


def load_key(args) -> Key:
    path = Path(args.sender)
    if not path.exists():
        path = _keyring(args) / f"{args.sender}.json"
    if not path.exists():
        raise SystemExit(f"no key {args.sender!r} (neither a file nor in {_keyring(args)})")
    return Key.load(path)


def cmd_tx(args) -> int:
    key = load_key(args)
    rpc = CometRPC(args.node)
    account = rpc.abci_query(f"/account/{key.bech32}")
    if account.code:
        print(f"account {key.bech32} not found: {account.log}", file=sys.stderr)
        return 1
    nonce = types_pb2.Account.FromString(account.value).nonce
    chain_id = rpc.status()["node_info"]["network"]
    if args.action == "bond":
        msg = txb.bond(args.amount)
    elif args.action == "unbond":
        msg = txb.unbond(args.amount)
    else:
        msg = txb.vote(args.round, args.accept == "yes", args.score)
    result = rpc.broadcast_tx_sync(txb.sign_tx(key, chain_id, nonce, [msg]))
    if result.code:
        print(f"tx rejected (code {result.code}): {result.log}", file=sys.stderr)
        return 1
    print(f"tx {result.hash} accepted into the mempool (nonce {nonce})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flchain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    node = argparse.ArgumentParser(add_help=False)
    node.add_argument("--node", default=DEFAULT_NODE, help=f"CometBFT RPC address (default {DEFAULT_NODE})")
    keyring = argparse.ArgumentParser(add_help=False)
    keyring.add_argument("--keyring-dir", default=str(DEFAULT_KEYRING), help="folder of key files")

    q = sub.add_parser("query", parents=[node], help="read chain state (ABCI query)")
    q.add_argument("what", choices=sorted(QUERIES))
    q.add_argument("arg", nargs="?", help="address for participant/account, id for round")
    q.add_argument("--output", "-o", choices=["text", "json"], default="text")
    q.set_defaults(func=cmd_query)

    k = sub.add_parser("keys", help="manage keys")
    ksub = k.add_subparsers(dest="action", required=True)
    ksub.add_parser("add", parents=[keyring]).add_argument("name")
    ksub.add_parser("list", parents=[keyring])
    k.set_defaults(func=cmd_keys)

    t = sub.add_parser("tx", help="sign and broadcast a tx")
    tsub = t.add_subparsers(dest="action", required=True)
    for action in ("bond", "unbond"):
        p = tsub.add_parser(action, parents=[node, keyring])
        p.add_argument("amount", type=int)
        p.add_argument("--from", dest="sender", required=True, help="key name or key file")
    v = tsub.add_parser("vote", parents=[node, keyring])
    v.add_argument("round", type=int)
    v.add_argument("accept", choices=["yes", "no"])
    v.add_argument("--score", type=int, default=0)
    v.add_argument("--from", dest="sender", required=True, help="key name or key file")
    t.set_defaults(func=cmd_tx)

    add_localnet_parser(sub)
    add_simulate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (NodeUnavailable, RPCError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
