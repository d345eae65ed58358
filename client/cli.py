"""`flchain`: the command line, in the style of a Cosmos chain's CLI.

  flchain localnet up|down|status          run N validators on this machine
  flchain keys add NAME | list             ed25519 keys in a keyring folder
  flchain tx bond|unbond|submit-update|vote ...   sign and broadcast a tx through a node's gateway (gRPC)
  flchain query params|round|participant|participants|account|model|candidate [--output json]
                                           read state with ABCI queries through a node's RPC
  flchain participant --from KEY ...       run a participant: train when drawn proposer, vote when voter
  flchain demo                             a torch federation with attackers on a 4-validator localnet
  flchain simulate run|sweep               in-process federations and parameter studies
"""
import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from abci_app.address import to_bech32
from client import tx as txb
from client.demo_cli import add_parser as add_demo_parser
from client.gateway_client import DEFAULT_GATEWAY, ChainError, GatewayClient
from client.keys import Key
from client.rpc import CometRPC, NodeUnavailable, RPCError
from client.signer import Signer
from client.simulator.cli import add_parser as add_simulate_parser
from flchain.v1 import query_pb2, types_pb2
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
    data = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)  # show zeros, e.g. version 0

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


def load_update(path: Path) -> list[tuple[str, np.ndarray]]:
    """An update saved with numpy.savez: arrays named and ordered like the model's tensors."""
    try:
        with np.load(path) as archive:
            return [(name, archive[name]) for name in archive.files]
    except (OSError, ValueError) as err:
        raise SystemExit(f"cannot read update {path}: {err}") from None


def tx_message(args):
    if args.action == "bond":
        return txb.bond(args.amount)
    if args.action == "unbond":
        return txb.unbond(args.amount)
    if args.action == "submit-update":
        return txb.submit_update(args.round, load_update(Path(args.update)), args.num_samples)
    return txb.vote(args.round, args.accept == "yes", args.score)


def cmd_tx(args) -> int:
    key = load_key(args)
    message = tx_message(args)
    with GatewayClient(args.gateway, retry_for=args.retry_for) as client:
        tx_hash = Signer(client, key).send([message])
    print(f"tx {tx_hash} accepted into the mempool (from {key.bech32})")
    return 0


def cmd_participant(args) -> int:
    import logging
    import signal

    from client import behaviours
    from client.ml import data
    from client.runtime import Participant

    if not 0 <= args.shard < args.shards:
        raise SystemExit(f"--shard must be in 0..{args.shards - 1}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shards, _ = data.partition(args.shards, alpha=args.alpha, seed=args.data_seed)
    client = GatewayClient(args.gateway, retry_for=args.retry_for)
    participant = Participant(load_key(args), client, shards[args.shard], behaviours.make(args.behaviour, args.lie),
                              args.model, seed=args.shard)
    signal.signal(signal.SIGTERM, lambda *_: participant.stop())
    print(f"{participant.name} ({participant.key.bech32}): {args.behaviour}, shard {args.shard}/{args.shards} "
          f"({len(participant.data.train)} train, {len(participant.data.test)} held-out), gateway {args.gateway}")
    try:
        participant.run()
    except KeyboardInterrupt:
        participant.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flchain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    node = argparse.ArgumentParser(add_help=False)
    node.add_argument("--node", default=DEFAULT_NODE, help=f"CometBFT RPC address (default {DEFAULT_NODE})")
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument("--keyring-dir", default=str(DEFAULT_KEYRING), help="folder of key files")
    keyring = argparse.ArgumentParser(add_help=False, parents=[folder])
    keyring.add_argument("--from", dest="sender", required=True, help="key name (in --keyring-dir) or key file")
    gateway = argparse.ArgumentParser(add_help=False)
    gateway.add_argument("--gateway", default=DEFAULT_GATEWAY, help=f"a node's gRPC gateway (default {DEFAULT_GATEWAY})")
    gateway.add_argument("--retry-for", type=float, default=30, help="seconds to keep retrying an unreachable gateway")

    q = sub.add_parser("query", parents=[node], help="read chain state (ABCI query)")
    q.add_argument("what", choices=sorted(QUERIES))
    q.add_argument("arg", nargs="?", help="address for participant/account, id for round")
    q.add_argument("--output", "-o", choices=["text", "json"], default="text")
    q.set_defaults(func=cmd_query)

    k = sub.add_parser("keys", help="manage keys")
    ksub = k.add_subparsers(dest="action", required=True)
    ksub.add_parser("add", parents=[folder]).add_argument("name")
    ksub.add_parser("list", parents=[folder])
    k.set_defaults(func=cmd_keys)

    t = sub.add_parser("tx", help="sign and broadcast a tx")
    tsub = t.add_subparsers(dest="action", required=True)
    for action in ("bond", "unbond"):
        tsub.add_parser(action, parents=[gateway, keyring]).add_argument("amount", type=int)
    u = tsub.add_parser("submit-update", parents=[gateway, keyring], help="a proposer's update from a .npz file")
    u.add_argument("round", type=int)
    u.add_argument("update", help="numpy .npz of new-minus-global weights, named and ordered like the model")
    u.add_argument("--num-samples", type=int, required=True, help="training samples behind the update")
    v = tsub.add_parser("vote", parents=[gateway, keyring])
    v.add_argument("round", type=int)
    v.add_argument("accept", choices=["yes", "no"])
    v.add_argument("--score", type=int, default=0)
    t.set_defaults(func=cmd_tx)

    from client.behaviours import ATTACKS
    part = sub.add_parser("participant", parents=[gateway, keyring],
                          help="run a participant against a node's gateway until Ctrl-C")
    part.add_argument("--shard", type=int, required=True, help="this participant's shard of the digits")
    part.add_argument("--shards", type=int, required=True, help="how many shards the data is split into")
    part.add_argument("--alpha", type=float, default=None, help="Dirichlet non-IID split (default IID)")
    part.add_argument("--data-seed", type=int, default=0)
    part.add_argument("--behaviour", choices=["honest", *ATTACKS], default="honest")
    part.add_argument("--lie", action="store_true", help="also vote against the truth")
    part.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    part.set_defaults(func=cmd_participant)

    add_localnet_parser(sub)
    add_demo_parser(sub)
    add_simulate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (NodeUnavailable, RPCError, ChainError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
