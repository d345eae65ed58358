"""`flchain federate`: the command line of experiments/federation.py (imported lazily: validators
have no torch)."""

import argparse
import sys
from dataclasses import asdict

from cli import demo, options


def cmd_federate(args: argparse.Namespace) -> int:
    from abci_app.genesis import default_params
    from experiments.federation import Federation, FederationConfig
    from experiments.report import write_csv
    from localnet import LocalnetError

    if args.proposers + args.voters > args.participants:
        raise SystemExit(f"--proposers + --voters ({args.proposers + args.voters}) exceed --participants")
    params = default_params()
    params.num_proposers, params.num_voters = args.proposers, args.voters
    config = FederationConfig(
        client=args.client,
        params=params,
        participants=args.participants,
        rounds=args.rounds,
        validators=args.validators,
        home=args.home.resolve(),
        base_port=args.base_port,
        keep_running=args.keep_running,
        store=args.store,
    )
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    federation = Federation(config)
    print(f"starting a {config.validators}-validator localnet in {config.home}; {args.client} x {config.participants}")

    def show(r) -> None:
        accuracy = "" if r.accuracy is None else f", accuracy {r.accuracy:.3f}"
        print(
            f"round {r.round_id}: {r.outcome} ({r.included} updates in, {r.condemned} condemned), "
            f"model v{r.model_version}: mean client loss {r.loss:.4f}{accuracy}",
            flush=True,
        )

    with demo.participants_log(out / "participants.log"):
        try:
            federation.start()
            rounds = federation.watch(show)
        except (LocalnetError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: stopping the participants and the localnet", file=sys.stderr)
            return 1
        finally:
            federation.stop()
    rows = [
        {**{k: v for k, v in asdict(r).items() if k != "stakes"}, **{f"stake_{i}": s for i, s in enumerate(r.stakes)}}
        for r in rounds
    ]
    path = write_csv(out / "rounds.csv", rows)
    print(f"wrote {path} (participants' log: {out / 'participants.log'})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "federate",
        parents=[options.localnet_run("reports/federation")],
        help="run any Flower client's federation on a real localnet (genesis model from the client)",
    )
    p.add_argument(
        "--client",
        required=True,
        metavar="MODULE:CLIENT_FN",
        help="client_fn(partition_id, num_partitions) -> a Flower NumPyClient, e.g. examples.breast_cancer:client_fn",
    )
    p.add_argument("--participants", type=int, default=8, help="one client per partition (default 8)")
    p.add_argument("--proposers", type=int, default=3, help="drawn per round to train (default 3)")
    p.add_argument("--voters", type=int, default=5, help="drawn per round to judge the updates (default 5)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--store",
        action="store_true",
        help="run the localnet's object store: a model above max_inline_model_bytes goes by reference through it",
    )
    p.set_defaults(func=cmd_federate)
