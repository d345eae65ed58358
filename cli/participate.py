"""`flchain participant`: run one participant against a node's gateway until Ctrl-C, with a Flower
client (`--client module:client_fn`) or the built-in digits learner."""

import argparse
import logging
import signal

from cli import options
from participant.behaviours import ATTACKS


def _learner(args: argparse.Namespace):
    if args.client:
        from participant.flower import FlowerLearner, load_factory

        return FlowerLearner(load_factory(args.client)(args.shard, args.shards))
    from participant import behaviours
    from participant.digits import DigitsLearner
    from participant.ml import data
    from participant.ml.config import default_training

    shards, _ = data.partition(args.shards, alpha=args.alpha, seed=args.data_seed)
    behaviour = behaviours.make(args.behaviour, args.lie)
    return DigitsLearner(shards[args.shard], behaviour, args.model, default_training(args.model), seed=args.shard)


def cmd_participant(args: argparse.Namespace) -> int:
    from client.artifacts import NoStore
    from participant import behaviours
    from participant.runtime import Participant

    if not 0 <= args.shard < args.shards:
        raise SystemExit(f"--shard must be in 0..{args.shards - 1}")
    if args.client and (args.behaviour != "honest" or args.alpha is not None or args.model != "mlp"):
        raise SystemExit("--behaviour, --alpha and --model are for the built-in digits learner, not --client")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    learner = _learner(args)
    client = options.gateway_client(args)
    participant = Participant(
        options.load_key(args),
        client,
        learner,
        behaviours.make(args.behaviour, args.lie),
        store=options.store_client(args),
    )
    signal.signal(signal.SIGTERM, lambda *_: participant.stop())
    print(
        f"{participant.name} ({participant.key.bech32}): {learner.describe()}, "
        f"partition {args.shard}/{args.shards}, gateway {args.gateway}"
        + (f", object store {args.store}" if args.store else "")
    )
    try:
        participant.run()
    except KeyboardInterrupt:
        participant.stop()
    except NoStore as err:  # found at the first look at the model, before any duty
        raise SystemExit(f"error: {err}") from None
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    part = sub.add_parser(
        "participant",
        parents=[options.gateway(), options.signing_key(), options.object_store()],
        help="run a participant against a node's gateway until Ctrl-C",
    )
    part.add_argument(
        "--client",
        metavar="MODULE:CLIENT_FN",
        help="a Flower NumPyClient factory, called as client_fn(partition_id, num_partitions) "
        "(e.g. examples.breast_cancer:client_fn); default: the built-in digits learner",
    )
    part.add_argument("--shard", type=int, required=True, help="this participant's partition of the data")
    part.add_argument("--shards", type=int, required=True, help="how many partitions the data is split into")
    part.add_argument("--alpha", type=float, default=None, help="digits: Dirichlet non-IID split (default IID)")
    part.add_argument("--data-seed", type=int, default=0)
    part.add_argument("--behaviour", choices=["honest", *ATTACKS], default="honest", help="digits: an attack")
    part.add_argument("--lie", action="store_true", help="also vote against the truth")
    part.add_argument("--model", choices=options.MODEL_KINDS, default="mlp", help="digits: the model")
    part.set_defaults(func=cmd_participant)
