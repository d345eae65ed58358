"""What the scenario matrix leaves behind: CSV tables, a Markdown report with every cell held against
the targets, and heatmaps of accuracy against the reference and of honest participants removed."""

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments import diagnosis
from experiments import matrix as mx
from experiments.config import CHAIN_DEFAULTS, CHAIN_FIELDS, SimConfig
from experiments.report import plt, write_csv

PARAMS_FILE = "params.json"


def chain_settings(config: SimConfig) -> dict:
    """The chain params (and stake threshold) a matrix ran on, and how the participants train."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k in ("threshold", *CHAIN_FIELDS)}
    return {**settings, "proximal_mu": config.train.proximal_mu, "max_steps": config.train.max_steps}


def overview(cells: Sequence[dict]) -> str:
    """One row per split and attacker fraction: cells met, mean accuracy gap, worst honest removal,
    and how many of its removal-targeted attacks were removed in time."""
    lines = [
        "| split | attackers | cells meeting every target | accuracy - reference (mean) "
        "| accuracy - honest alone (mean) | honest removed (worst) "
        "| attacks removed within " + f"{mx.REMOVAL_DEADLINE} rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["split"], c["attacker_fraction"]), []).append(c)
    for (split, fraction), group in groups.items():
        exempt = (*mx.FREE_RIDERS, *mx.VOTE_ONLY, *mx.COPIERS)
        removable = [c for c in group if c["attacker_fraction"] and c["attack"] not in exempt]
        removed = sum("removal" not in c["missed"] for c in removable)
        lines.append(
            f"| {split} | {fraction:.0%} | {sum(not c['missed'] for c in group)} of {len(group)} "
            f"| {np.mean([c['accuracy_gap'] for c in group]):+.3f} "
            f"| {_gap_to_honest_alone(group)} "
            f"| {max(c['max_honest_removed_share'] for c in group):.0%} "
            f"| {f'{removed} of {len(removable)}' if removable else '-'} |"
        )
    return "\n".join(lines)


def compare(folders: Sequence[Path]) -> str:
    """A Markdown table of several matrices (a parameter study): what each changed against the
    chain's defaults, and how many cells missed each target."""
    defaults = chain_settings(SimConfig())
    targets = (
        "honest_removed",
        "honest_return",
        "accuracy",
        "removal",
        "free_rider_return",
        "liar_return",
        "copier_return",
    )
    lines = [
        "| matrix | params changed | cells meeting every target | " + " | ".join(f"missed {t}" for t in targets) + " |",
        "|---|---|---|" + "---|" * len(targets),
    ]
    for folder in folders:
        settings = json.loads((folder / PARAMS_FILE).read_text())
        settings.setdefault("max_steps", 0)  # matrices made before the cap trained every epoch in full
        settings.setdefault("norm_bound_bps", 0)  # and those made before the norm bound were unbounded
        settings.setdefault("server_momentum_bps", 0)  # and those before server momentum, plain FedAvg
        settings.setdefault("copy_cosine_bps", 0)  # and those before the copy rule had none
        settings.setdefault("copy_window_rounds", CHAIN_DEFAULTS.copy_window_rounds)
        settings.setdefault("sample_bound_bps", 0)  # and those before the sample bound weighed every claim
        changed = ", ".join(f"{k}={v}" for k, v in settings.items() if defaults.get(k) != v) or "defaults"
        cells = mx.summarize(mx.read_rows(folder / "runs.csv"), mx.read_rows(folder / "references.csv"))
        missed = [c["missed"].split(",") for c in cells]
        counts = [sum(t in m for m in missed) for t in targets]
        met = sum(m == [""] for m in missed)
        lines.append(
            f"| {folder.name} | {changed} | {met} of {len(cells)} | " + " | ".join(str(n) for n in counts) + " |"
        )
    return "\n".join(lines) + "\n"


def causes(rows: Sequence[dict]) -> str:
    """Over every run: what removed the honest participants who were removed, and what became of the
    attackers' updates; empty for runs recorded before the counts were."""
    if not diagnosis.recorded(rows):
        return ""
    lost = ", ".join(f"{words} ({n})" for words, n in diagnosis.removals(rows).items() if n)
    fates = diagnosis.update_fates(rows)
    honest = diagnosis.total(rows, "honest_updates")
    honest_out = diagnosis.total(rows, "honest_updates_left_out")
    return (
        f"Why, over all {len(rows)} runs: "
        + (
            f"the honest participants removed lost most of their stake through {lost}"
            if lost
            else "no honest participant was removed"
        )
        + f"; of the attackers' {sum(fates.values())} updates, {fates['condemned']} were condemned, "
        f"{fates['left out, no slash']} left out without a slash and {fates['in the FedAvg']} joined the FedAvg; "
        f"{honest_out} of {honest} honest updates were left out. Each cell's row says the same of its own runs."
    )


def _gap_to_honest_alone(cells: Sequence[dict]) -> str:
    """Mean accuracy minus what FedAvg among the honest alone reaches ('-' where it was not measured)."""
    alone = [c.get("honest_alone_accuracy") for c in cells]
    gaps = [c["final_accuracy"] - a for c, a in zip(cells, alone) if a is not None]
    return f"{np.mean(gaps):+.3f}" if len(gaps) == len(cells) else "-"


def _role(cell: dict) -> str:
    return f" ({_fmt(cell['copier_return'])})" if cell.get("copier_return") is not None else ""


def _fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.0f}%" if pct else f"{value:+.3f}" if value < 0 else f"{value:.3f}"
    return str(value)


def markdown(m: mx.Matrix, cells: Sequence[dict], command: str, note: str = "", runs: Sequence[dict] = ()) -> str:
    met = sum(not c["missed"] for c in cells)
    votes = "lie" if m.base.attackers_lie else "vote truthfully"
    lines = [
        "# Defence scenario matrix",
        "",
        f"Made by `{command}`: {m.seeds} seeds per cell, {m.base.participants} participants, "
        f"{m.base.rounds} rounds, model `{m.base.model}`, attackers {votes}"
        " when drawn as voters, chain params at their defaults except as listed below.",
        "",
        "Chain params (and how every participant trains, the references' too: proximal_mu, the FedProx "
        "term, and max_steps, the local SGD steps at most, None: the epochs of the federation's typical "
        "shard): " + ", ".join(f"{k}={v}" for k, v in chain_settings(m.base).items()) + ".",
        "",
        f"Targets of every cell: honest participants removed <= {mx.MAX_HONEST_REMOVED:.0%} in every seed, "
        f"honest mean return > 0, every attacker removed within {mx.REMOVAL_DEADLINE} rounds in every seed "
        "(instead, free riders: mean return <= 0; lying voters, who corrupt only their votes: mean return < 0; "
        "lazy copiers, who copy the work they can see in one role and work honestly in the other: mean return "
        "of the copying role <= 0), "
        f"final accuracy at most {mx.MAX_ACCURACY_GAP * 100:.0f} points below plain FedAvg without attackers on "
        "the same split and seeds (the reference). Beside it, plain FedAvg among each cell's honest participants "
        "alone (honest alone): what a defence that kept every attacker out from the first round would reach.",
        "",
        f"**{met} of {len(cells)} cells meet every target.**",
        "",
        overview(cells),
    ]
    why = causes(runs)
    if why:
        lines += ["", why]
    if note:
        lines[2:2] = [note, ""]
    for split in dict.fromkeys(c["split"] for c in cells):
        rows = [c for c in cells if c["split"] == split]
        lines += [
            "",
            f"## {split}",
            "",
            "| attackers | attack | accuracy | reference | gap | honest alone | rounds to remove (worst) "
            "| honest removed (max) | honest return | attacker return (copying role) | missed targets "
            "| why (counts over the seeds) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in sorted(rows, key=lambda c: (c["attacker_fraction"], c["attack"])):
            removal = c["worst_rounds_until_removed"] if c["removed_in_all_seeds"] else "not all"
            lines.append(
                f"| {c['attacker_fraction']:.0%} | {c['attack']} | {_fmt(c['final_accuracy'])} | "
                f"{_fmt(c['reference_accuracy'])} | {_fmt(c['accuracy_gap'])} | "
                f"{_fmt(c.get('honest_alone_accuracy'))} | "
                f"{removal if c['attacker_fraction'] else '-'} | {_fmt(c['max_honest_removed_share'], pct=True)} | "
                f"{_fmt(c['honest_return'])} | {_fmt(c['attacker_return'])}{_role(c)} | {c['missed'] or 'none'} | "
                f"{c.get('why') or '-'} |"
            )
    return "\n".join(lines) + "\n"


def heatmaps(path: Path, cells: Sequence[dict]) -> Path:
    """Per split: accuracy gap to the reference, and honest participants removed, attack x fraction."""
    splits = list(dict.fromkeys(c["split"] for c in cells))
    attacks = sorted({c["attack"] for c in cells}, key=lambda a: (a != mx.NO_ATTACK, a))  # "none": the 0% cell
    fractions = sorted({c["attacker_fraction"] for c in cells})
    fig, axes = plt.subplots(
        len(splits), 2, figsize=(4 + 1.2 * len(fractions) * 2, 1 + 0.45 * len(attacks) * len(splits)), squeeze=False
    )
    for row, split in enumerate(splits):
        by_key = {(c["attacker_fraction"], c["attack"]): c for c in cells if c["split"] == split}
        for col, (metric, label, cmap, vmin, vmax) in enumerate(
            [
                ("accuracy_gap", "accuracy - reference", "RdYlGn", -0.3, 0.05),
                ("max_honest_removed_share", "honest removed (max over seeds)", "Reds", 0.0, 1.0),
            ]
        ):
            grid = np.array(
                [[by_key[(f, a)][metric] if (f, a) in by_key else np.nan for f in fractions] for a in attacks],
                dtype=float,
            )
            ax = axes[row][col]
            ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            for i in range(len(attacks)):
                for j in range(len(fractions)):
                    if not np.isnan(grid[i, j]):
                        ax.text(
                            j,
                            i,
                            f"{grid[i, j]:+.2f}" if col == 0 else f"{grid[i, j]:.0%}",
                            ha="center",
                            va="center",
                            fontsize=7,
                        )
            ax.set_xticks(range(len(fractions)), [f"{f:.0%}" for f in fractions])
            ax.set_yticks(range(len(attacks)), attacks, fontsize=8)
            ax.set_title(f"{split}: {label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_causes(path: Path, rows: Sequence[dict]) -> Path | None:
    """Per attack, over all its runs: what became of the attackers' updates, and what removed the
    honest participants who were removed (None for runs recorded before the counts were)."""
    if not diagnosis.recorded(rows):
        return None
    attacks = sorted({r["attack"] for r in rows}, key=lambda a: (a != mx.NO_ATTACK, a))
    fates = [diagnosis.update_fates([r for r in rows if r["attack"] == a]) for a in attacks]
    removed = [diagnosis.removals([r for r in rows if r["attack"] == a]) for a in attacks]
    panels = [
        ("attackers' updates", "updates, all splits, fractions and seeds", fates),
        ("honest participants removed, by what cost them most", "removals (one per participant and run)", removed),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.4 * len(attacks) + 1.5), sharey=True)
    for ax, (title, xlabel, per_attack) in zip(axes, panels):
        start = np.zeros(len(attacks))
        for label in per_attack[0]:
            values = np.array([counts[label] for counts in per_attack], dtype=float)
            ax.barh(attacks, values, left=start, label=label)
            start += values
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(
    folder: Path,
    m: mx.Matrix,
    rows: Sequence[dict],
    refs: Sequence[dict],
    cells: Sequence[dict],
    command: str,
    note: str = "",
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "README.md"
    report.write_text(markdown(m, cells, command, note, rows))
    params = folder / PARAMS_FILE  # what `flchain simulate compare` reads back
    params.write_text(json.dumps(chain_settings(m.base), indent=2) + "\n")
    return [
        params,
        write_csv(folder / "runs.csv", rows),
        write_csv(folder / "references.csv", refs),
        write_csv(folder / "cells.csv", cells),
        report,
        heatmaps(folder / "matrix.png", cells),
        *filter(None, [plot_causes(folder / "causes.png", rows)]),
    ]
