"""`flchain demo` end to end at a small scale: a real 4-validator localnet, torch participants over
gRPC, and the report it promises."""

import csv
import json

import pytest

from cli.main import main as flchain
from localnet import Localnet

pytestmark = pytest.mark.integration


def test_demo_runs_rounds_and_writes_its_report(tmp_path, cometbft_bin, port_base, capsys):
    home, out = tmp_path / "net", tmp_path / "report"
    assert (
        flchain(
            [
                "demo",
                "--participants",
                "8",
                "--attacker-fraction",
                "0.25",
                "--rounds",
                "3",
                "--home",
                str(home),
                "--base-port",
                str(port_base(4)),
                "--out",
                str(out),
                "--no-baselines",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "8 participants joined (2 malicious: sign_flip, lying voters)" in printed.out
    summary = json.loads(printed.out[printed.out.index("{") : printed.out.rindex("}") + 1])
    with (out / "rounds.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["rounds_played"] == 3
    assert summary["accepted"] + summary["rejected"] <= 3
    stakes = [c for c in rows[0] if c.startswith("stake_")]
    assert len(stakes) == 8 and sum(c.endswith("_m") for c in stakes) == 2
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    for name in ("stake.png", "accuracy.png", "summary.json", "participants.log"):
        assert (out / name).stat().st_size > 0
    log = (out / "participants.log").read_text()
    assert "bonded 2000" in log and ("revealed its update" in log or "revealed its ballot" in log)
    assert not Localnet(home).running()  # stopped at the end
