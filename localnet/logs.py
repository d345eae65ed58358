"""The last lines of a process's log, for the one-line errors that name a dead process."""

from pathlib import Path


def tail(path: Path, lines: int = 3) -> str:
    """The log's last non-empty lines, joined by " | " (empty if it cannot be read)."""
    try:
        text = path.read_bytes()[-4000:].decode(errors="replace")
    except OSError:
        return ""
    last = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(line[:300] for line in last)
