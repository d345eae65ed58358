"""The scenario matrix: its cells, its target checks, and a small real run end to end."""

from experiments import matrix as mx
from experiments.config import SimConfig


def cell(**overrides) -> dict:
    good = {
        "split": "iid",
        "attacker_fraction": 0.3,
        "attack": "sign_flip",
        "seeds": 3,
        "final_accuracy": 0.9,
        "reference_accuracy": 0.91,
        "accuracy_gap": -0.01,
        "worst_rounds_until_removed": 12,
        "removed_in_all_seeds": True,
        "max_honest_removed_share": 0.0,
        "honest_return": 0.2,
        "attacker_return": -0.3,
    }
    return {**good, **overrides}


def test_targets_are_checked_cell_by_cell():
    assert mx.missed_targets(cell()) == []
    assert mx.missed_targets(cell(max_honest_removed_share=0.1, honest_return=-0.01)) == [
        "honest_removed",
        "honest_return",
    ]
    assert mx.missed_targets(cell(accuracy_gap=-0.05)) == ["accuracy"]
    assert mx.missed_targets(cell(worst_rounds_until_removed=25)) == ["removal"]
    assert mx.missed_targets(cell(removed_in_all_seeds=False, worst_rounds_until_removed=None)) == ["removal"]
    # free riders need not be removed, but must not profit
    assert mx.missed_targets(cell(attack="tiny_step", removed_in_all_seeds=False, attacker_return=0.0)) == []
    assert mx.missed_targets(cell(attack="tiny_step", attacker_return=0.05)) == ["free_rider_return"]
    # lying voters corrupt only their votes: a malicious vote must not pay
    assert mx.missed_targets(cell(attack="lying_voter", removed_in_all_seeds=False, attacker_return=-0.1)) == []
    assert mx.missed_targets(cell(attack="lying_voter", attacker_return=0.0)) == ["liar_return"]
    assert mx.missed_targets(cell(attacker_fraction=0.0, attack="none", removed_in_all_seeds=False)) == []


def test_matrix_cells_and_a_small_run(tmp_path):
    from experiments import matrix_report

    m = mx.Matrix(
        splits=(None, 0.5),
        fractions=(0.0, 0.25),
        attacks=("sign_flip", "tiny_step"),
        seeds=2,
        base=SimConfig(participants=8, rounds=3, mode="torch"),
    )
    configs = m.configs()
    assert len(configs) == 2 * (1 + 2) * 2 and len(m.references()) == 4
    assert {c.attackers_lie for _, c in configs} == {True}
    assert [(a, c.alpha, c.seed) for a, c in configs[:2]] == [("none", None, 0), ("none", None, 1)]
    rows, refs = mx.run_matrix(m, workers=2)
    cells = mx.summarize(rows, refs)
    assert len(cells) == 6 and {c["seeds"] for c in cells} == {2}
    none = next(c for c in cells if c["split"] == "dirichlet-0.5" and c["attack"] == "none")
    ref = [r["accuracy"] for r in refs if r["split"] == "dirichlet-0.5"]
    assert none["reference_accuracy"] == sum(ref) / 2 and 0 < none["final_accuracy"] <= 1
    paths = matrix_report.write(tmp_path, m, rows, refs, cells, "flchain simulate matrix (test)")
    report = (tmp_path / "README.md").read_text()
    assert "## dirichlet-0.5" in report and "| 25% | tiny_step |" in report
    assert all(p.stat().st_size > 0 for p in paths)
    # a parameter study reads the matrix back: what it changed, and its misses per target
    table = matrix_report.compare([tmp_path])
    row = table.splitlines()[2].split(" | ")
    assert row[1] == "defaults" and row[2] == f"{sum(not c['missed'] for c in cells)} of 6"
    assert int(row[3]) == sum("honest_removed" in c["missed"] for c in cells)
