"""The durable delivery outbox: alerts waiting to reach a sink survive a restart.

Who calls this: :class:`rollback.alerting.AlertRouter` (from a worker thread; every method is
synchronous and thread-safe). What it promises:

- :meth:`Outbox.write` commits new entries (and the router's book of open alerts) in one
  transaction, durably (SQLite WAL, ``synchronous=FULL``), before the router sends anything;
- entries of one sink come out of :meth:`Outbox.next_pending` in the order they were written, so
  a trigger is always delivered before the resolve that follows it (in order per dedup key);
- an entry stays pending until :meth:`mark_delivered` or :meth:`mark_rejected`: a process killed
  between the send and the mark re-sends it on start (at-least-once; receivers dedup);
- one process per file: a second :class:`Outbox` on the same path fails with
  :class:`OutboxLockedError` instead of delivering everything twice.

The file (default ``state/outbox.sqlite3``, ``alerting.outbox_path``) holds alert texts and
evidence, never a routing key or other secret: sinks add credentials when they send.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback.sinks.base import Alert
from rollback.sinks.limits import Clock

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    event TEXT NOT NULL,
    alert TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox (sink, state, id);
CREATE TABLE IF NOT EXISTS open_alerts (
    sink TEXT NOT NULL,
    ident TEXT NOT NULL,
    namespace TEXT NOT NULL,
    service TEXT NOT NULL,
    revision TEXT NOT NULL,
    ts REAL NOT NULL,
    alert TEXT NOT NULL,
    PRIMARY KEY (sink, ident)
);
"""


class OutboxLockedError(RuntimeError):
    """Another process (or another Outbox in this one) holds the file."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One alert waiting for one sink."""

    id: int
    sink: str
    alert: Alert
    attempts: int
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """A trigger the router has sent (or queued) to a sink and not yet resolved. ``ident`` is
    the dedup key, plus a suffix for a rollback-failed alert (its own Alertmanager alert)."""

    sink: str
    ident: str
    alert: Alert


def _dump(alert: Alert) -> str:
    # default=str: an odd value in an outcome's request log must not lose the alert
    return json.dumps(alert.to_record(), sort_keys=True, separators=(",", ":"), default=str)


def _load(text: str) -> Alert:
    rec: dict[str, Any] = json.loads(text)
    return Alert.from_record(rec)


class Outbox:
    """A SQLite-backed queue per sink, plus the book of open alerts."""

    def __init__(self, path: str | Path, *, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._lockfile = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lockfile)
            raise OutboxLockedError(f"outbox {self.path} is in use by another process") from None
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.closed = False

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._db.close()
            fcntl.flock(self._lockfile, fcntl.LOCK_UN)
            os.close(self._lockfile)

    def write(
        self,
        entries: Sequence[tuple[str, Alert]],
        *,
        opened: Sequence[tuple[str, str, Alert]] = (),
        closed: Sequence[tuple[str, str]] = (),
    ) -> list[int]:
        """Queue ``(sink, alert)`` entries and update the open-alert book, atomically."""
        now = self._clock()
        ids: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sink, alert in entries:
                    cur = self._db.execute(
                        "INSERT INTO outbox (sink, dedup_key, event, alert, enqueued_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (sink, alert.dedup_key, alert.event.value, _dump(alert), now),
                    )
                    ids.append(int(cur.lastrowid or 0))
                for sink, ident, alert in opened:
                    d = alert.decision
                    self._db.execute(
                        "INSERT OR REPLACE INTO open_alerts "
                        "(sink, ident, namespace, service, revision, ts, alert) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (sink, ident, d.namespace, d.service, d.revision, d.ts, _dump(alert)),
                    )
                for sink, ident in closed:
                    self._db.execute(
                        "DELETE FROM open_alerts WHERE sink = ? AND ident = ?", (sink, ident)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def next_pending(self, sink: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, alert, attempts, enqueued_at FROM outbox "
                "WHERE sink = ? AND state = 'pending' ORDER BY id LIMIT 1",
                (sink,),
            ).fetchone()
        if row is None:
            return None
        return Entry(int(row[0]), sink, _load(row[1]), int(row[2]), float(row[3]))

    def record_failure(self, entry_id: int, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (reason, entry_id),
            )

    def mark_delivered(self, entry_id: int) -> None:
        self._finish(entry_id, "delivered", None)

    def mark_rejected(self, entry_id: int, reason: str) -> None:
        self._finish(entry_id, "rejected", reason)

    def _finish(self, entry_id: int, state: str, reason: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, "
                "last_error = COALESCE(?, last_error), finished_at = ? WHERE id = ?",
                (state, reason, self._clock(), entry_id),
            )

    def pending_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sink, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY sink"
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def open_alerts(
        self, *, sink: str | None = None, namespace: str | None = None, service: str | None = None
    ) -> list[OpenAlert]:
        sql = "SELECT sink, ident, alert FROM open_alerts WHERE 1 = 1"
        args: list[str] = []
        for col, val in (("sink", sink), ("namespace", namespace), ("service", service)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY ts, sink, ident", args).fetchall()
        return [OpenAlert(str(r[0]), str(r[1]), _load(r[2])) for r in rows]

    def close_open(self, sink: str, ident: str) -> None:
        self.write((), closed=((sink, ident),))

    def prune(self, older_than: float) -> int:
        """Forget delivered and rejected entries finished before ``older_than``."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?", (older_than,)
            )
        return cur.rowcount

    def entries(self, sink: str | None = None) -> list[dict[str, Any]]:
        """Every entry as a dict (``id, sink, dedup_key, event, state, attempts, last_error``),
        oldest first: for tests and for inspecting a stuck outbox."""
        sql = "SELECT id, sink, dedup_key, event, state, attempts, last_error FROM outbox"
        args: tuple[str, ...] = ()
        if sink is not None:
            sql += " WHERE sink = ?"
            args = (sink,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        keys = ("id", "sink", "dedup_key", "event", "state", "attempts", "last_error")
        return [dict(zip(keys, r, strict=True)) for r in rows]
