"""Durable node state in SQLite, in WAL mode.

The store is a small transactional key-value map with named namespaces
(``kind``): the node decides what goes in it, the store only guarantees that
a ``commit`` is atomic and durable before it returns. The node commits all
state changes of one processing step in one transaction *before* it sends
the messages that depend on them, so a SIGKILL at any instant leaves either
the old or the new state, never a state that others have seen and we forgot.

``sync = "full"`` fsyncs the WAL at each commit (survives power loss);
``"normal"`` leaves the WAL in the OS page cache, which survives a process
kill (SIGKILL) but not a machine crash. Both are WAL mode.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""
COLUMNS = ["kind", "key", "value"]


class StoreError(RuntimeError):
    """The database cannot be opened or is not a node store."""


@dataclass
class WriteBatch:
    """Changes to apply atomically, with the meaning of applying the calls one after another."""

    puts: dict[tuple[str, bytes], bytes] = field(default_factory=dict)
    deletes: set[tuple[str, bytes]] = field(default_factory=set)
    delete_below: dict[str, bytes] = field(default_factory=dict)

    def put(self, kind: str, key: bytes, value: bytes) -> None:
        self.deletes.discard((kind, key))
        self.puts[(kind, key)] = value

    def delete(self, kind: str, key: bytes) -> None:
        self.puts.pop((kind, key), None)
        self.deletes.add((kind, key))

    def prune(self, kind: str, below: bytes) -> None:
        """Delete every key of ``kind`` that sorts before ``below``, including keys put earlier in
        this batch (the SQL runs prunes first, so earlier puts below the bound are dropped here)."""
        current = self.delete_below.get(kind)
        self.delete_below[kind] = below if current is None else max(current, below)
        for key in [k for k in self.puts if k[0] == kind and k[1] < below]:
            del self.puts[key]

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes or self.delete_below)


def int_key(value: int) -> bytes:
    """Fixed-width big-endian key, so byte order is numeric order."""
    return value.to_bytes(8, "big", signed=False)


def _lock_exclusively(path: Path) -> int:
    """An open descriptor holding an exclusive lock on ``path`` (created if missing), with our pid in
    it: two nodes on one store would both act as its replica. The lock goes with the process."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store's lock file ({exc.strerror})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise StoreError(
            f"{path.parent}: the store is in use by another node (pid {holder}); stop it first"
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def _connect(path: Path, sync: str) -> sqlite3.Connection:
    """A connection to the store at ``path``, checked to be an intact node store, so damage or a
    foreign database is reported at start rather than as a failure mid-run."""
    try:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open node store ({exc})") from None
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode})")
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            raise StoreError(f"{path}: the database is damaged ({problems[0].splitlines()[-1]})")
        db.executescript(SCHEMA)
        columns = [row[1] for row in db.execute("PRAGMA table_info(records)")]
        if columns != COLUMNS:
            found = ", ".join(columns)
            raise StoreError(f"{path}: not a node store (its records table has columns {found})")
    except StoreError:
        db.close()
        raise
    except sqlite3.Error as exc:
        db.close()
        raise StoreError(f"{path}: cannot open node store ({exc})") from None
    return db


class Store:
    """A node's SQLite database."""

    def __init__(self, path: Path, sync: str = "full") -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path.parent}: cannot create the data directory ({exc.strerror})") from None
        self._lock = _lock_exclusively(path.with_name(path.name + ".lock"))
        try:
            self._db = _connect(path, sync)
        except StoreError:
            os.close(self._lock)
            raise
        self.path = path
        self.commits = 0

    def commit(self, batch: WriteBatch) -> None:
        """Apply ``batch`` in one durable transaction."""
        if not batch:
            return
        try:
            self._apply(batch)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot commit ({exc})") from None
        self.commits += 1

    def _apply(self, batch: WriteBatch) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for kind, below in batch.delete_below.items():
                db.execute("DELETE FROM records WHERE kind = ? AND key < ?", (kind, below))
            if batch.deletes:
                db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", list(batch.deletes))
            if batch.puts:
                db.executemany(
                    "INSERT OR REPLACE INTO records (kind, key, value) VALUES (?, ?, ?)",
                    [(kind, key, value) for (kind, key), value in batch.puts.items()],
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def get(self, kind: str, key: bytes) -> bytes | None:
        try:
            query = "SELECT value FROM records WHERE kind = ? AND key = ?"
            row = self._db.execute(query, (kind, key)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read ({exc})") from None
        return None if row is None else bytes(row[0])

    def scan(self, kind: str) -> list[tuple[bytes, bytes]]:
        """All records of ``kind`` in key order."""
        try:
            rows: Iterable[tuple[bytes, bytes]] = self._db.execute(
                "SELECT key, value FROM records WHERE kind = ? ORDER BY key", (kind,)
            )
            return [(bytes(key), bytes(value)) for key, value in rows]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read ({exc})") from None

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            os.close(self._lock)
