"""localnet.processes: a recorded group is watched and stopped by its leader's start time, so a pid
that the system handed to another process since is never taken for ours, nor signalled."""

import sys

from localnet import processes

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_spawned_group_is_alive_until_stopped_and_its_output_goes_to_the_log(tmp_path):
    groups = processes.ProcessGroups()
    log = tmp_path / "logs" / "node0-app.log"
    entry = groups.spawn(SLEEPER, log, tmp_path)
    try:
        assert entry["pid"] > 0 and entry["argv"] == SLEEPER
        assert entry["start_time"] == processes.start_time(entry["pid"])
        assert groups.alive(entry)
        assert "==== localnet: starting" in log.read_text()
    finally:
        groups.stop([entry], timeout=5)
    assert not groups.alive(entry)
    assert processes.start_time(entry["pid"]) is None  # reaped, not left a zombie


def test_an_entry_whose_pid_was_reused_is_neither_alive_nor_signalled(tmp_path):
    groups = processes.ProcessGroups()
    real = groups.spawn(SLEEPER, tmp_path / "real.log", tmp_path)
    try:
        # the same pid recorded by an earlier process that started later than this one could have
        stale = {**real, "start_time": real["start_time"] + 10_000}
        assert not processes.ProcessGroups().alive(stale)  # another object: it did not start it
        processes.ProcessGroups().stop([stale], timeout=1)
        assert groups.alive(real)  # the process now holding the pid was left alone
    finally:
        groups.stop([real], timeout=5)
    assert not groups.alive(real)


def test_no_entry_is_not_alive():
    assert not processes.ProcessGroups().alive(None)
