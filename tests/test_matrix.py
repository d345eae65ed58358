"""The scenario matrix: its cells, its target checks, and a small real run end to end."""

import json

from experiments import matrix as mx
from experiments.config import SimConfig
from flchain.v1 import types_pb2


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
    # per split and seed, the no-attack reference and, at 25%, FedAvg among the honest alone
    assert len(configs) == 2 * (1 + 2) * 2 and len(m.references()) == 2 * 2 * 2
    assert {c.attackers_lie for _, c in configs} == {True}
    assert [(a, c.alpha, c.seed) for a, c in configs[:2]] == [("none", None, 0), ("none", None, 1)]
    rows, refs = mx.run_matrix(m, workers=2)
    cells = mx.summarize(rows, refs)
    assert len(cells) == 6 and {c["seeds"] for c in cells} == {2}
    none = next(c for c in cells if c["split"] == "dirichlet-0.5" and c["attack"] == "none")
    ref = [r["accuracy"] for r in refs if r["split"] == "dirichlet-0.5" and r["attacker_fraction"] == 0]
    assert none["reference_accuracy"] == sum(ref) / 2 and 0 < none["final_accuracy"] <= 1
    assert none["honest_alone_accuracy"] == none["reference_accuracy"]  # nobody to leave out
    alone = [r["accuracy"] for r in refs if r["split"] == "dirichlet-0.5" and r["attacker_fraction"] == 0.25]
    flipped = next(c for c in cells if c["split"] == "dirichlet-0.5" and c["attack"] == "sign_flip")
    assert len(alone) == 2 and flipped["honest_alone_accuracy"] == sum(alone) / 2
    paths = matrix_report.write(tmp_path, m, rows, refs, cells, "flchain simulate matrix (test)")
    report = (tmp_path / "README.md").read_text()
    assert "## dirichlet-0.5" in report and "| 25% | tiny_step |" in report
    assert all(p.stat().st_size > 0 for p in paths)
    # a parameter study reads the matrix back: what it changed, and its misses per target
    table = matrix_report.compare([tmp_path])
    row = table.splitlines()[2].split(" | ")
    assert row[1] == "defaults" and row[2] == f"{sum(not c['missed'] for c in cells)} of 6"
    assert int(row[3]) == sum("honest_removed" in c["missed"] for c in cells)
    # a matrix made before local training was capped, and before the norm bound, reads back as
    # uncapped and unbounded
    params = json.loads((tmp_path / matrix_report.PARAMS_FILE).read_text())
    del params["max_steps"], params["norm_bound_bps"]
    (tmp_path / matrix_report.PARAMS_FILE).write_text(json.dumps(params))
    assert matrix_report.compare([tmp_path]).splitlines()[2].split(" | ")[1] == "max_steps=0, norm_bound_bps=0"
    # every run counts its rounds; a cell that misses a target says why, one that does not, nothing
    assert all(r["diag_rounds"] == r["rounds"] for r in rows)
    assert all(bool(c["why"]) == bool(c["missed"]) for c in cells)


def _round(verdicts, voters) -> types_pb2.Round:
    return types_pb2.Round(
        verdicts=[
            types_pb2.Verdict(proposer=p, included=inc, condemned=con, contribution_bps=0) for p, inc, con in verdicts
        ],
        ballots=[types_pb2.Ballot(voter=v) for v in voters],
    )


def test_a_diagnosis_counts_what_happened_to_updates_ballots_and_the_removed():
    from experiments.diagnosis import Diagnosis

    honest, liar, poisoner = b"h" * 20, b"l" * 20, b"p" * 20
    malicious = {honest: False, liar: True, poisoner: True}
    poisons = {honest: False, liar: False, poisoner: True}  # a lying voter's updates are honest work
    d = Diagnosis()
    d.add_round(
        _round([(honest, True, False), (poisoner, True, False), (liar, True, False)], [liar, poisoner, honest]),
        malicious,
        poisons,
    )
    d.add_round(_round([(honest, False, False), (poisoner, False, True)], [honest, honest, liar]), malicious, poisons)
    d.add_round(_round([(poisoner, False, False), (poisoner, True, False)], [honest]), malicious, poisons)
    # participant 0 lost most by its votes, participant 1 by a condemned update, participant 2 lost nothing
    d.lose(0, "voter_contradicted", 300)
    d.lose(0, "update_condemned", 200)
    d.lose(1, "update_condemned", 400)
    d.lose(1, "liveness_voter", 50)
    d.lose(3, "update_included", 999)  # not a loss cause: ignored
    d.removed([0, 1, 2])
    row = d.row()
    assert row["diag_rounds"] == 3
    assert (row["diag_honest_updates"], row["diag_honest_updates_left_out"]) == (2, 1)
    assert (
        row["diag_attacker_updates"],
        row["diag_attacker_updates_condemned"],
        row["diag_attacker_updates_left_out"],
    ) == (4, 1, 1)
    assert (row["diag_rounds_attacker_included"], row["diag_rounds_masked"], row["diag_rounds_attacker_ballots"]) == (
        2,
        1,
        1,
    )
    assert (row["diag_honest_removed_by_votes"], row["diag_honest_removed_by_updates"]) == (1, 1)
    assert row["diag_honest_removed_by_silence"] == 1  # removed with no slash on record: it went silent
    assert not any(k.startswith("diag__") for k in row)


def test_a_cell_says_why_it_misses_each_target():
    from experiments.diagnosis import explain

    runs = [
        {
            "diag_rounds": 30,
            "diag_honest_removed_by_votes": 2,
            "diag_honest_removed_by_updates": 1,
            "diag_honest_updates": 80,
            "diag_honest_updates_left_out": 8,
            "diag_attacker_updates": 10,
            "diag_attacker_updates_condemned": 3,
            "diag_attacker_updates_left_out": 2,
            "diag_rounds_attacker_included": 6,
            "diag_rounds_masked": 3,
            "attacker_ballot_return": 0.25,
            "attacker_update_return": -0.05,
        }
    ] * 2
    why = explain(["honest_removed", "accuracy", "removal", "copier_return"], runs)
    assert why.split("; ") == [
        "honest removed by votes contradicting clear verdicts (4), condemned updates (2)",
        "an attacker's update in the FedAvg in 20% of rounds, attackers' updates side by side in 10% of rounds, "
        "honest updates left out 10%",
        "attackers' updates: 20, condemned 30%, left out 20%",
        "attackers earned +0.25 as voters, -0.05 as proposers",
    ]
    assert explain([], runs) == ""
    assert explain(["accuracy"], [{"final_accuracy": 0.5}]) == ""  # a report from before the counts
