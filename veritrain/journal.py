"""A crash-safe local journal (SQLite, WAL, synchronous=FULL) for long-running roles.

The worker and the verifier record every item's phase and every transaction they send
*before* acting on it, so a process killed with SIGKILL at any moment restarts from the
journal: it never claims twice, never forgets a pending reveal, never loses a sent tx.

- ``items``: one row per unit of work (a task claim, a checked result, a dispute), keyed by
  the caller (e.g. ``"task:12"``), with a phase name and a JSON payload.
- ``txs``: every transaction intent and its outcome (:class:`TxStatus`: ``intent`` -> ``sent`` ->
  ``mined``, ``failed`` or ``dropped``), so a restarted role can look up a hash instead of sending
  again.

Phases are strings in the file; each role names its own as a ``StrEnum`` (``worker.task_state``,
``verifier.records``) and reads its payloads as typed records (:meth:`Item.record`).
- ``kv``: small settings (last scanned block, ...).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


class TxStatus(StrEnum):
    INTENT = "intent"  # recorded before the transaction is built and sent
    SENT = "sent"  # broadcast; its hash is recorded
    MINED = "mined"
    FAILED = "failed"  # reverted, or refused before broadcast
    DROPPED = "dropped"  # never mined (replaced or evicted)

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    data TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL,
    action TEXT NOT NULL,
    tx_hash TEXT,
    status TEXT NOT NULL,
    detail TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_item ON txs(item, action);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Item:
    key: str
    phase: str
    data: dict[str, Any]
    updated: float

    def record(self, model: type[R]) -> R:
        """The payload as the role's typed record (pydantic validates it)."""
        return model.model_validate(self.data)


@dataclass(frozen=True)
class TxRecord:
    id: int
    item: str
    action: str
    tx_hash: str | None
    status: str
    detail: str | None


class Journal:
    """One SQLite file; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ items
    def put(self, key: str, phase: str, **data: Any) -> Item:
        """Set ``key``'s phase, merging ``data`` into its payload."""
        with self._tx() as db:
            row = db.execute("SELECT data FROM items WHERE key=?", (key,)).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **data}
            now = time.time()
            db.execute(
                "INSERT INTO items(key, phase, data, updated) VALUES(?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET phase=excluded.phase, data=excluded.data, "
                "updated=excluded.updated",
                (key, phase, json.dumps(merged, sort_keys=True), now),
            )
        return Item(key, phase, merged, now)

    def get(self, key: str) -> Item | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, phase, data, updated FROM items WHERE key=?", (key,)
            ).fetchone()
        return Item(row[0], row[1], json.loads(row[2]), row[3]) if row else None

    def items(self, prefix: str = "", phases: tuple[str, ...] | None = None) -> list[Item]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, phase, data, updated FROM items WHERE key LIKE ? ORDER BY key",
                (prefix + "%",),
            ).fetchall()
        out = [Item(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]
        return [i for i in out if phases is None or i.phase in phases]

    # ------------------------------------------------------------------ transactions
    def tx_intent(self, item: str, action: str, detail: str | None = None) -> int:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO txs(item, action, status, detail, created, updated) "
                "VALUES(?,?,?,?,?,?)",
                (item, action, TxStatus.INTENT, detail, now, now),
            )
            return int(cur.lastrowid or 0)

    def tx_update(self, tx_id: int, status: TxStatus | str, tx_hash: str | None = None,
                  detail: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE txs SET status=?, tx_hash=COALESCE(?, tx_hash), "
                "detail=COALESCE(?, detail), updated=? WHERE id=?",
                (str(TxStatus(status)), tx_hash, detail, time.time(), tx_id),
            )

    def txs(self, item: str | None = None, action: str | None = None) -> list[TxRecord]:
        sql = "SELECT id, item, action, tx_hash, status, detail FROM txs WHERE 1=1"
        args: list[Any] = []
        if item is not None:
            sql += " AND item=?"
            args.append(item)
        if action is not None:
            sql += " AND action=?"
            args.append(action)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [TxRecord(*r) for r in rows]

    # ------------------------------------------------------------------ kv
    def set(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO kv(key, value) VALUES(?,?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def value(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
