"""The process groups a localnet starts: each in its own session, so it outlives the Python process
that started it (the CLI starts a net in one command and stops it in another), recorded with its
start time, so that a later command never signals a process that merely reuses a recorded pid."""

import os
import signal
import subprocess
import time
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return int(stat[19]) if stat else None  # field 22 (starttime) of proc(5)


def entry_for(pid: int, argv: list[str]) -> dict:
    """What the pid file records of a started group: its leader, when it started, and its argv."""
    return {"pid": pid, "start_time": start_time(pid), "argv": argv}


class ProcessGroups:
    """Starts, watches and stops process groups; remembers the ones it started, to reap them."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen] = {}

    def spawn(self, argv: list[str], log_path: Path, cwd: Path) -> dict:
        """Start argv in a new session, its output appended to log_path; the entry to record."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"\n==== localnet: starting {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._children[proc.pid] = proc
        return entry_for(proc.pid, argv)

    def alive(self, entry: dict | None) -> bool:
        """Whether any process of the group led by entry's pid is still alive (zombies excepted)."""
        if not entry:
            return False
        child = self._children.get(entry["pid"])
        if child is not None and child.poll() is None:
            return True
        return bool(_members(entry))

    def stop(self, entries: list[dict], timeout: float) -> None:
        """SIGTERM the groups, wait up to `timeout`, SIGKILL what is left, reap our children."""
        entries = [e for e in entries if self.alive(e)]
        for entry in entries:
            _signal(entry, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while entries and time.monotonic() < deadline:
            entries = [e for e in entries if self.alive(e)]
            if entries:
                time.sleep(0.1)
        for entry in entries:
            _signal(entry, signal.SIGKILL)
        for entry in entries:
            end = time.monotonic() + 5
            while self.alive(entry) and time.monotonic() < end:
                time.sleep(0.05)
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]


def _members(entry: dict) -> list[int]:
    """Live processes in the recorded process group, started no earlier than its leader."""
    pgid, since = entry["pid"], entry.get("start_time")
    if since is None or not Path("/proc/self/stat").exists():  # no procfs: trust the pid
        try:
            os.kill(pgid, 0)
            return [pgid]
        except OSError:
            return []
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _proc_stat(int(name))
            if stat and stat[0] not in "ZX" and int(stat[2]) == pgid and int(stat[19]) >= since:
                members.append(int(name))
    return members


def _signal(entry: dict, sig: int) -> None:
    if _members(entry):
        try:
            os.killpg(entry["pid"], sig)
        except (ProcessLookupError, PermissionError):
            pass
