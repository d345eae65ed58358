"""Key-value stores under the state machine.

`SqliteStore` keeps committed state on disk and writes each block in one transaction together
with its height and app hash, so a crash leaves either the old or the new block, never a mix.
`MemoryStore` is the same thing in memory (simulator, tests). `Overlay` buffers the writes of a
block (or a tx) on top of either; its sorted write set is what the app hash commits to.
"""

import hashlib
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_DELETED = None


class ReadableStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with prefix (None: no upper bound)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._height, self._app_hash = 0, b""

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._data if k.startswith(prefix)):
            yield key, self._data[key]

    def commit(self, writes: dict[bytes, bytes | None], height: int, app_hash: bytes) -> None:
        for key, value in writes.items():
            if value is _DELETED:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        self._height, self._app_hash = height, app_hash

    def last_commit(self) -> tuple[int, bytes]:
        return self._height, self._app_hash


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0), "
            "height INTEGER NOT NULL, app_hash BLOB NOT NULL)"
        )

    def get(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        end = _prefix_end(prefix)
        if end is None:
            rows = self._db.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (prefix,))
        else:
            rows = self._db.execute("SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", (prefix, end))
        yield from rows.fetchall()

    def commit(self, writes: dict[bytes, bytes | None], height: int, app_hash: bytes) -> None:
        with self._db:  # one transaction: the block's writes and its height/app hash land together
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k, v in writes.items() if v is _DELETED])
            self._db.executemany(
                "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                [(k, v) for k, v in writes.items() if v is not _DELETED],
            )
            self._db.execute("INSERT OR REPLACE INTO meta (id, height, app_hash) VALUES (0, ?, ?)", (height, app_hash))

    def last_commit(self) -> tuple[int, bytes]:
        row = self._db.execute("SELECT height, app_hash FROM meta WHERE id = 0").fetchone()
        return (row[0], row[1]) if row else (0, b"")

    def close(self) -> None:
        self._db.close()


class Overlay:
    """Pending writes over a readable store; reads see the pending writes first."""

    def __init__(self, base: ReadableStore) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = _DELETED

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        merged = dict(self.base.items(prefix))
        for key, value in self.writes.items():
            if key.startswith(prefix):
                if value is _DELETED:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        for key in sorted(merged):
            yield key, merged[key]

    def write_into(self, parent: "Overlay") -> None:
        """Make this overlay's writes part of its parent (a tx that succeeded joins its block)."""
        parent.writes.update(self.writes)

    def write_set_digest(self) -> bytes:
        """sha256 over the sorted (key, value-or-deletion) pairs: what the app hash commits to."""
        h = hashlib.sha256()
        for key in sorted(self.writes):
            value = self.writes[key]
            h.update(struct.pack(">I", len(key)) + key)
            h.update(b"\x00" if value is _DELETED else b"\x01" + struct.pack(">I", len(value)) + value)
        return h.digest()


def next_app_hash(previous: bytes, height: int, write_set_digest: bytes) -> bytes:
    """A hash chain over blocks: each app hash commits to all earlier state changes."""
    return hashlib.sha256(previous + struct.pack(">Q", height) + write_set_digest).digest()
