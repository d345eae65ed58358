"""`flchain tx bond|unbond|submit-update|vote`: sign a tx and broadcast it through a node's gateway.

Updates and ballots are sealed: `--commit` sends the commitment (in PROPOSE or VOTE), the same
command without it the reveal (in the next phase). The salt is derived from the key, the chain and
the round (client.tx.derive_salt), so the two calls need nothing but the same inputs."""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from cli import options
from cli.query import show_included
from client import tx as txb
from client.keys import Key
from client.rpc import CometRPC
from client.signer import Signer
from flchain.v1 import tx_pb2


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def load_update(path: Path) -> list[tuple[str, np.ndarray]]:
    """An update saved with numpy.savez: arrays named and ordered like the model's tensors."""
    try:
        with np.load(path) as archive:
            return [(name, archive[name]) for name in archive.files]
    except (OSError, ValueError) as err:
        raise SystemExit(f"cannot read update {path}: {err}") from None


def tx_message(args: argparse.Namespace, key: Key, chain_id: str) -> tx_pb2.Msg:
    if args.action == "bond":
        return txb.bond(args.amount)
    if args.action == "unbond":
        return txb.unbond(args.amount)
    if args.action == "submit-update":
        salt = txb.derive_salt(key, chain_id, args.round, b"update")
        sealed = txb.sealed_update(key.address, args.round, load_update(Path(args.update)), args.num_samples, salt)
    else:
        salt = txb.derive_salt(key, chain_id, args.round, b"ballot")
        sealed = txb.sealed_ballot(
            key.address, args.round, args.loss, args.scores, salt, args.alignments, start_loss=args.start_loss
        )
    return sealed.commit if args.commit else sealed.reveal


def cmd_tx(args: argparse.Namespace) -> int:
    key = options.load_key(args)
    with options.gateway_client(args) as client:
        if args.chain_id and client.chain_id != args.chain_id:  # never sign for a chain the user did not mean
            raise SystemExit(f"error: {args.gateway} serves chain {client.chain_id!r}, not {args.chain_id!r}")
        message = tx_message(args, key, client.chain_id)
        tx_hash = Signer(client, key).send([message])
    if not args.wait:
        if args.output == "json":
            print(json.dumps({"hash": tx_hash, "sender": key.bech32, "code": 0, "in_mempool": True}, indent=2))
        else:
            print(f"tx {tx_hash} accepted into the mempool (from {key.bech32})")
        return 0
    try:  # CheckTx only said the tx may be valid; its block says whether it was
        included = CometRPC(args.node).wait_for_tx(tx_hash, timeout=args.wait_timeout)
    except TimeoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return show_included(included, args.output)


def add_parser(sub: argparse._SubParsersAction) -> None:
    confirm = argparse.ArgumentParser(add_help=False, parents=[options.node()])
    confirm.add_argument(
        "--wait", action="store_true", help="wait for the tx's block and print its result (code, log, height)"
    )
    confirm.add_argument("--wait-timeout", type=float, default=30, help="seconds --wait waits (default 30)")
    confirm.add_argument("-o", "--output", choices=["text", "json"], default="text")
    confirm.add_argument(
        "--chain-id",
        default=os.environ.get("FLCHAIN_CHAIN_ID"),
        help="refuse to sign unless the gateway serves this chain (default FLCHAIN_CHAIN_ID)",
    )
    common = [options.gateway(), options.signing_key(), confirm]
    t = sub.add_parser("tx", help="sign and broadcast a tx")
    tsub = t.add_subparsers(dest="action", required=True)
    for action in ("bond", "unbond"):
        tsub.add_parser(action, parents=common).add_argument("amount", type=int)
    seal = argparse.ArgumentParser(add_help=False)
    seal.add_argument(
        "--commit",
        action="store_true",
        help="send the commitment to this content (PROPOSE/VOTE); without it, reveal it (the next phase)",
    )
    common = [*common, seal]
    u = tsub.add_parser("submit-update", parents=common, help="a proposer's update from a .npz file")
    u.add_argument("round", type=int)
    u.add_argument("update", help="numpy .npz of new-minus-global weights, named and ordered like the model")
    u.add_argument("--num-samples", type=int, required=True, help="training samples behind the update")
    v = tsub.add_parser(
        "vote", parents=common, help="a voter's evidence on every update of the round (see proto/flchain/v1/tx.proto)"
    )
    v.add_argument("round", type=int)
    v.add_argument("--loss", type=int, required=True, help="the voter's loss with every update, in 1e-4 nats")
    v.add_argument(
        "--start-loss",
        type=int,
        required=True,
        help="the voter's loss where the round's step starts (no update), in 1e-4 nats",
    )
    v.add_argument(
        "--scores",
        type=_ints,
        required=True,
        help="per update, in the round's submitted order: loss without it minus --loss, in 1e-4 nats (e.g. 120,-3000)",
    )
    v.add_argument(
        "--alignments",
        type=_ints,
        default=[],
        help="per update: cosine with the FedAvg of the others, in basis points (e.g. 6100,-8800); none by default",
    )
    t.set_defaults(func=cmd_tx)
