"""`flchain demo`: the command line of experiments/demo.py (imported lazily: validators have no torch)."""

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from cli import options


@contextlib.contextmanager
def participants_log(path: Path):
    """While the demo runs, what the participants and their clients log goes to a file (the
    terminal has the progress bar)."""
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    flchain_log = logging.getLogger("flchain")
    saved = flchain_log.level, flchain_log.propagate
    flchain_log.addHandler(handler)
    flchain_log.setLevel(logging.INFO)
    flchain_log.propagate = False
    try:
        yield
    finally:
        flchain_log.removeHandler(handler)
        handler.close()
        flchain_log.setLevel(saved[0])
        flchain_log.propagate = saved[1]


def _run(demo, config, log_file: Path):
    """Start, watch and stop the demo; its result, or None after saying what went wrong."""
    from tqdm import tqdm

    from localnet import LocalnetError

    attackers, fed = sum(demo.malicious), config.federation
    print(f"starting a {config.validators}-validator localnet in {config.home} (logs in {config.home / 'logs'}) ...")
    try:
        demo.start()
        print(
            f"{fed.participants} participants joined ({attackers} malicious: {fed.attack}"
            f"{', lying voters' if fed.attackers_lie and attackers else ''}); their log: {log_file}"
        )
        with tqdm(total=fed.rounds, desc="demo", unit="round") as bar:
            return demo.watch(bar)
    except (LocalnetError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    except KeyboardInterrupt:
        print("interrupted: stopping the participants and the localnet", file=sys.stderr)
        return None
    finally:
        demo.stop()


def cmd_demo(args) -> int:
    import torch

    from experiments import report
    from experiments.baselines import run_baselines
    from experiments.demo import Demo, DemoConfig

    torch.set_num_threads(1)  # twenty trainers share the machine with four validators
    config = DemoConfig(
        federation=options.federation_config(args, attacker_fraction=args.attacker_fraction, mode="localnet"),
        validators=args.validators,
        home=args.home.resolve(),
        base_port=args.base_port,
        out=args.out,
        keep_running=args.keep_running,
        store=args.store,
    )
    out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / "participants.log"
    with participants_log(log_file):
        result = _run(Demo(config), config, log_file)
    if result is None:
        return 1
    baselines = {}
    if args.baselines:
        print(f"running the same federation without the chain's defence ({', '.join(config.baselines)}) ...")
        baselines = run_baselines(config.federation, config.baselines)
    paths = report.write_run(out, result, baselines)
    summary = report.summary(result)
    summary.update({f"{name}_final_accuracy": acc[-1] for name, acc in baselines.items()})
    print(json.dumps(summary, indent=2))
    print("wrote " + ", ".join(str(p) for p in paths))
    if config.keep_running:
        print(f"the localnet is still running (participants stopped): `flchain localnet --home {config.home} down`")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        parents=[options.federation(rounds=20), options.localnet_run("reports/demo")],
        help="a torch federation with attackers on a real localnet, with a report",
    )
    p.add_argument("--attacker-fraction", type=float, default=0.3)
    p.add_argument(
        "--store",
        action="store_true",
        help="run the localnet's object store and federate by reference (needed by --model wide: 10M parameters)",
    )
    p.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="skip the comparisons (undefended FedAvg/median, and FedAvg without attackers)",
    )
    p.set_defaults(func=cmd_demo)
