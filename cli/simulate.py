"""`flchain simulate run` and `flchain simulate sweep`."""

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from cli import options
from experiments.config import CHAIN_FIELDS, SimConfig
from experiments.simulator import Simulation
from participant.behaviours import ATTACKS
from participant.ml.config import TrainConfig

DEFAULT_OUT = Path("reports")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _base_config(args) -> SimConfig:
    return options.federation_config(args, mode=args.mode, p_detect=args.p_detect, p_accept=args.p_accept)


def cmd_run(args) -> int:
    config = replace(
        _base_config(args),
        attacker_fraction=args.attacker_fraction,
        threshold=args.threshold,
        proposer_reward_bps=args.reward_bps,
        proposer_slash_bps=args.slash_bps,
        num_proposers=args.proposers,
        num_voters=args.voters,
    )
    from tqdm import tqdm

    from experiments import report
    from experiments.baselines import run_baselines

    with tqdm(total=config.rounds, desc="simulate", unit="round") as bar:

        def show(record):
            bar.set_postfix(
                outcome=record.outcome,
                attackers=record.attackers_bonded,
                acc=f"{record.accuracy:.3f}" if record.accuracy is not None else "-",
            )
            bar.update()

        result = Simulation(config).run(show)
    baselines = {}
    if config.mode == "torch" and not args.no_baselines:
        print("running the baselines without defence (fedavg, median) and without attackers (reference) ...")
        baselines = run_baselines(config)
    out = args.out / f"run-{config.attack}-{int(config.attacker_fraction * 100)}pct-{config.mode}"
    paths = report.write_run(out, result, baselines)
    summary = report.summary(result)
    for name, acc in baselines.items():
        summary[f"{name}_final_accuracy"] = acc[-1]
    print(json.dumps(summary, indent=2))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_sweep(args) -> int:
    from tqdm import tqdm

    from experiments import report, sweep
    from experiments.baselines import run_baselines

    grid = sweep.Grid(
        threshold=args.threshold,
        proposer_reward_bps=args.reward_bps,
        proposer_slash_bps=args.slash_bps,
        num_proposers=args.proposers,
        num_voters=args.voters,
        attacker_fraction=args.attacker_fraction,
        seeds=args.seeds,
    )
    base = _base_config(args)
    baseline_fn = None
    if base.mode == "torch" and not args.no_baselines:

        def baseline_fn(config):
            return {f"{name}_accuracy": acc[-1] for name, acc in run_baselines(config).items()}

    with tqdm(total=len(grid.configs(base)), desc="sweep", unit="run") as bar:
        rows = sweep.run_sweep(grid, base, bar.update, baseline_fn)
    summary = sweep.summarize(rows, base.rounds)
    chosen = sweep.recommend(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"sweep-{base.attack}-{base.mode}"
    paths = [
        report.write_csv(args.out / f"{tag}-runs.csv", rows),
        report.write_csv(args.out / f"{tag}-summary.csv", summary),
    ]
    print_table(summary, chosen)
    if chosen:
        print("recommended: " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
    else:
        print("no parameter set removed every attacker with a positive honest return; widen the grid")
    paths.append(
        sweep.plot(
            args.out / f"{tag}.png", summary, chosen or {k: summary[0][k] for k in sweep.PARAM_KEYS}, base.rounds
        )
    )
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _splits(text: str) -> tuple[float | None, ...]:
    """ "iid,0.5,0.1" -> (None, 0.5, 0.1)."""
    return tuple(None if v.strip() == "iid" else float(v) for v in text.split(","))


def _names(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(","))
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    return names


def _setting(text: str) -> tuple[str, float]:
    """ "num_proposers=6" -> ("num_proposers", 6): a chain param (or the stake threshold) of a matrix."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or name not in SETTABLE:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(SETTABLE)}; got {text!r}")
    try:
        return name, float(value) if name == "threshold" else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} takes a number, got {value!r}") from None


SETTABLE = ("threshold", *CHAIN_FIELDS)


def cmd_matrix(args) -> int:
    import shlex
    import sys

    from tqdm import tqdm

    from experiments import matrix as mx
    from experiments import matrix_report

    base = SimConfig(
        participants=args.participants,
        rounds=args.rounds,
        model=args.model,
        seed=args.seed,
        attackers_lie=not args.honest_votes,
        mode="torch",
        train=TrainConfig(proximal_mu=args.proximal_mu, max_steps=args.max_steps),
        **dict(args.set),
    )
    attacks = args.attacks or mx.ATTACKS
    m = mx.Matrix(splits=args.splits, fractions=args.fractions, attacks=attacks, seeds=args.seeds, base=base)
    if args.report_only:  # summarize the runs of an earlier matrix again (e.g. after a change of targets)
        rows, refs = mx.read_rows(args.out / "runs.csv"), mx.read_rows(args.out / "references.csv")
    else:
        total = len(m.configs()) + len(m.references())
        print(f"{len(m.configs())} defended runs and {len(m.references())} reference runs on {args.workers} workers")
        with tqdm(total=total, desc="matrix", unit="run") as bar:
            rows, refs = mx.run_matrix(m, args.workers, bar.update)
    cells = mx.summarize(rows, refs)
    shown = [a for a in sys.argv[3:] if a != "--report-only"] if sys.argv[1:3] == ["simulate", "matrix"] else []
    command = "flchain simulate matrix " + shlex.join(shown)  # what produces these runs
    paths = matrix_report.write(args.out, m, rows, refs, cells, command.strip(), args.note)
    met = sum(not c["missed"] for c in cells)
    print(f"{met} of {len(cells)} cells meet every target")
    for c in cells:
        if c["missed"]:
            print(f"  {c['split']}, {c['attacker_fraction']:.0%} {c['attack']}: missed {c['missed']}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_compare(args) -> int:
    from experiments import matrix_report

    table = matrix_report.compare(args.folders)
    print(table, end="")
    if args.out:
        args.out.write_text(table)
        print(f"wrote {args.out}")
    return 0


def print_table(summary: list[dict], chosen: dict | None) -> None:
    """The chosen params' rows (or all rows of a small sweep), as a Markdown table."""
    from experiments.sweep import PARAM_KEYS

    rows = [r for r in summary if chosen and all(r[k] == chosen[k] for k in PARAM_KEYS)] or summary[:30]
    cols = [
        *PARAM_KEYS,
        "attacker_fraction",
        "removed_share",
        "rounds_until_removed",
        "honest_return",
        "attacker_return",
        "honest_removed_share",
        "final_accuracy",
        "fedavg_accuracy",
        "median_accuracy",
    ]
    cols = [c for c in cols if c in rows[0]]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print(
            "| "
            + " | ".join("-" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
            + " |"
        )


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("simulate", help="simulate federations on the chain's state machine (no CometBFT)")
    actions = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False, parents=[options.federation(rounds=40)])
    common.add_argument(
        "--p-detect",
        type=float,
        default=SimConfig.p_detect,
        help="fast mode: chance that a corrupt candidate is visibly bad (torch runs measure it)",
    )
    common.add_argument(
        "--p-accept", type=float, default=SimConfig.p_accept, help="fast mode: chance that an honest voter judges right"
    )
    common.add_argument("--no-baselines", action="store_true", help="skip the undefended comparisons")
    common.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default reports/)")

    run = actions.add_parser("run", parents=[common], help="one configuration, with per-round CSV and plots")
    run.add_argument("--mode", choices=["torch", "fast"], default="torch")
    run.add_argument("--attacker-fraction", type=float, default=0.3)
    run.add_argument(
        "--threshold",
        type=float,
        default=SimConfig.threshold,
        help="min stake as a fraction of the initial stake (default: the chain's)",
    )
    run.add_argument("--reward-bps", type=int, default=SimConfig.proposer_reward_bps)
    run.add_argument("--slash-bps", type=int, default=SimConfig.proposer_slash_bps)
    run.add_argument("--proposers", type=int, default=SimConfig.num_proposers)
    run.add_argument("--voters", type=int, default=SimConfig.num_voters)
    run.set_defaults(func=cmd_run)

    mat = actions.add_parser(
        "matrix", help="the defence's scenario matrix (splits x attacker fractions x attacks x seeds), torch mode"
    )
    mat.add_argument("--participants", type=int, default=20)
    mat.add_argument("--rounds", type=int, default=30)
    mat.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    mat.add_argument("--seed", type=int, default=0, help="first seed")
    mat.add_argument("--seeds", type=int, default=3, help="seeds per cell")
    mat.add_argument("--splits", type=_splits, default=(None, 0.5, 0.1), help="iid and Dirichlet alphas (iid,0.5,0.1)")
    mat.add_argument("--fractions", type=_floats, default=(0.0, 0.1, 0.3, 0.45))
    mat.add_argument("--attacks", type=_names, default=None, help="comma-separated (default: every attack)")
    mat.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a chain param for every run (repeatable), e.g. --set num_proposers=6",
    )
    mat.add_argument("--honest-votes", action="store_true", help="attackers vote truthfully (default: they lie)")
    mat.add_argument(
        "--proximal-mu",
        type=float,
        default=TrainConfig.proximal_mu,
        help="FedProx term of every participant's local training (the references' too); 0: plain SGD",
    )
    mat.add_argument(
        "--max-steps",
        type=int,
        default=TrainConfig.max_steps,
        help="local SGD steps at most per update (the references' too; default: the epochs of the "
        "federation's typical shard); 0: every epoch in full",
    )
    mat.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    mat.add_argument("--out", type=Path, default=DEFAULT_OUT / "matrix", help="report folder (default reports/matrix)")
    mat.add_argument("--note", default="", help="a paragraph for the report's head (what was measured, and why)")
    mat.add_argument("--report-only", action="store_true", help="rewrite the report from the runs already in --out")
    mat.set_defaults(func=cmd_matrix)

    cmp = actions.add_parser(
        "compare", help="a parameter study: several matrices (run with --set) side by side, misses per target"
    )
    cmp.add_argument("folders", type=Path, nargs="+", help="matrix report folders")
    cmp.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    cmp.set_defaults(func=cmd_compare)

    sw = actions.add_parser("sweep", parents=[common], help="a grid of parameters; CSV, plot, recommendation")
    sw.add_argument("--mode", choices=["torch", "fast"], default="fast")
    sw.add_argument("--threshold", type=_floats, default=(0.3, 0.5, 0.7))
    sw.add_argument("--reward-bps", type=_ints, default=(300, 1_000))
    sw.add_argument("--slash-bps", type=_ints, default=(1_000, 2_000, 3_000, 5_000))
    sw.add_argument("--proposers", type=_ints, default=(1, 2, 3))
    sw.add_argument("--voters", type=_ints, default=(5, 9))
    sw.add_argument("--attacker-fraction", type=_floats, default=(0.1, 0.3, 0.45))
    sw.add_argument("--seeds", type=int, default=3)
    sw.set_defaults(func=cmd_sweep)
