"""The state in a SQLite file (``sqlite:///path``): no server, shared by the processes of one
machine (``qwen-gradio serve --workers N`` makes one for its workers).

Write-ahead logging lets the processes read while one writes; each change is one short
transaction (``BEGIN IMMEDIATE`` where a check and a write go together). The file holds only
what the module ``_state`` lists, so it is not synced to disk after each change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..routing import SpaceLoad
from .base import STALE

__all__ = ["SqliteStore", "sqlite_path"]

BUSY = 2000  # milliseconds a change waits for another process's

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flight (space TEXT, process TEXT, count INTEGER, at REAL,
                                   PRIMARY KEY (space, process));
CREATE TABLE IF NOT EXISTS cool (space TEXT PRIMARY KEY, until REAL);
CREATE TABLE IF NOT EXISTS wait (space TEXT PRIMARY KEY, seconds REAL, at REAL);
CREATE TABLE IF NOT EXISTS hits (name TEXT, at REAL);
CREATE INDEX IF NOT EXISTS hits_by_name ON hits (name, at);
CREATE TABLE IF NOT EXISTS kept (key TEXT PRIMARY KEY, value TEXT, expires REAL, at REAL);
CREATE INDEX IF NOT EXISTS kept_by_time ON kept (at);
"""


def sqlite_path(url: str) -> Path:
    """The file ``sqlite:///path`` names."""
    return Path("/" + url.removeprefix("sqlite://").lstrip("/"))


class SqliteStore:
    """A ``StateStore`` in one SQLite file (one connection: one thread calls it)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, timeout=BUSY / 1000, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCHEMA)

    def loads(self, spaces: Sequence[str], process: str, now: float) -> dict[str, SpaceLoad]:
        marks = ",".join("?" * len(spaces))
        flights = dict.fromkeys(spaces, 0)
        for space, count in self.db.execute(
            f"SELECT space, SUM(count) FROM flight WHERE space IN ({marks}) AND process != ?"
            " AND at > ? GROUP BY space",
            (*spaces, process, now - STALE),
        ):
            flights[space] = count
        cools = dict(
            self.db.execute(
                f"SELECT space, until FROM cool WHERE space IN ({marks}) AND until > ?",
                (*spaces, now),
            ).fetchall()
        )
        waits = dict(
            self.db.execute(
                f"SELECT space, seconds FROM wait WHERE space IN ({marks}) AND at > ?",
                (*spaces, now - 60),
            ).fetchall()
        )
        return {
            space: SpaceLoad(flights[space], cools.get(space, 0.0), waits.get(space))
            for space in spaces
        }

    def in_flight(self, space: str, process: str, count: int, now: float) -> None:
        if count:
            self.db.execute(
                "INSERT OR REPLACE INTO flight VALUES (?, ?, ?, ?)", (space, process, count, now)
            )
        else:
            self.db.execute("DELETE FROM flight WHERE space = ? AND process = ?", (space, process))

    def cooling(self, space: str, until: float, now: float) -> None:
        self.db.execute(
            "INSERT INTO cool VALUES (?, ?) ON CONFLICT (space) DO UPDATE SET until ="
            " excluded.until",
            (space, until),
        )

    def queue_wait(self, space: str, seconds: float | None, now: float) -> None:
        if seconds is None:
            self.db.execute("DELETE FROM wait WHERE space = ?", (space,))
        else:
            self.db.execute("INSERT OR REPLACE INTO wait VALUES (?, ?, ?)", (space, seconds, now))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A check and its write as one (other processes wait up to ``BUSY``)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def hit(self, name: str, limit: int, window: float, now: float) -> float | None:
        with self._transaction() as db:
            db.execute("DELETE FROM hits WHERE name = ? AND at <= ?", (name, now - window))
            count, first = db.execute(
                "SELECT COUNT(*), MIN(at) FROM hits WHERE name = ?", (name,)
            ).fetchone()
            if count >= limit:
                return max(first + window - now, 0.0)  # type: ignore[no-any-return]
            db.execute("INSERT INTO hits VALUES (?, ?)", (name, now))
            return None

    def keep(self, key: str, value: str, ttl: float, limit: int, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO kept VALUES (?, ?, ?, ?)", (key, value, now + ttl, now)
            )
            db.execute("DELETE FROM kept WHERE expires <= ?", (now,))
            db.execute(
                "DELETE FROM kept WHERE key IN (SELECT key FROM kept ORDER BY at DESC"
                " LIMIT -1 OFFSET ?)",
                (limit,),
            )

    def kept(self, key: str, now: float) -> str | None:
        row = self.db.execute(
            "SELECT value FROM kept WHERE key = ? AND expires > ?", (key, now)
        ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()
