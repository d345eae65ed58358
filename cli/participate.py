"""`flchain participant`: run one participant against a node's gateway until Ctrl-C."""

import argparse
import logging
import signal

from cli import options
from client.gateway_client import GatewayClient
from participant.behaviours import ATTACKS


def cmd_participant(args: argparse.Namespace) -> int:
    from participant import behaviours
    from participant.ml import data
    from participant.runtime import Participant

    if not 0 <= args.shard < args.shards:
        raise SystemExit(f"--shard must be in 0..{args.shards - 1}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shards, _ = data.partition(args.shards, alpha=args.alpha, seed=args.data_seed)
    client = GatewayClient(args.gateway, retry_for=args.retry_for)
    participant = Participant(
        options.load_key(args),
        client,
        shards[args.shard],
        behaviours.make(args.behaviour, args.lie),
        args.model,
        seed=args.shard,
    )
    signal.signal(signal.SIGTERM, lambda *_: participant.stop())
    print(
        f"{participant.name} ({participant.key.bech32}): {args.behaviour}, shard {args.shard}/{args.shards} "
        f"({len(participant.data.train)} train, {len(participant.data.test)} held-out), gateway {args.gateway}"
    )
    try:
        participant.run()
    except KeyboardInterrupt:
        participant.stop()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    part = sub.add_parser(
        "participant",
        parents=[options.gateway(), options.signing_key()],
        help="run a participant against a node's gateway until Ctrl-C",
    )
    part.add_argument("--shard", type=int, required=True, help="this participant's shard of the digits")
    part.add_argument("--shards", type=int, required=True, help="how many shards the data is split into")
    part.add_argument("--alpha", type=float, default=None, help="Dirichlet non-IID split (default IID)")
    part.add_argument("--data-seed", type=int, default=0)
    part.add_argument("--behaviour", choices=["honest", *ATTACKS], default="honest")
    part.add_argument("--lie", action="store_true", help="also vote against the truth")
    part.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    part.set_defaults(func=cmd_participant)
