"""The durable outbox between the detector and the notifiers.

Why: an alert must survive a receiver that is down for minutes and a process
restart in between, and nobody may be paged twice for one transition.

How:

* The on-call engine (:mod:`listener.oncall`, in the ``notify`` role) writes
  every notice, once per receiver, into a SQLite database in the data
  directory — in the same transaction as its own state, and *before* the
  Kafka offsets of the alert events behind it are committed
  (``synchronous=FULL``).  The row key is ``(notice id, receiver)`` and
  inserts ignore existing keys, so events read again after a crash add
  nothing: the ids are deterministic.
* A :class:`Dispatcher` (a thread of the service) sends what is due, marks it
  delivered, and on failure schedules the next attempt with exponential
  backoff and full jitter — or at the receiver's ``Retry-After``.  A delivery
  a receiver refuses for good (a 4xx other than 429) or that is still failing
  after ``give_up_after_s`` is marked ``dead`` with its error: kept, counted
  and logged, never silently dropped.
* Sends to one receiver are spaced by its ``rate_per_minute``.
* Actions (receivers ``action:<name>``, e.g. pausing scheduled posts) go
  first, so the notices of the same round already show their outcome
  (``decorate`` renders the crisis's current on-call view into each payload
  at send time).
* A crisis's notices reach a receiver in order: a later one waits while an
  earlier one to the same receiver is still pending (a ``triggered`` retried
  after its ``resolved`` would reopen a PagerDuty incident nobody closes).

* Each retry of a delivery waits longer for the receiver's answer: the
  receiver's ``timeout_s`` times the attempt number, at most 60 s (or
  ``timeout_s`` if larger) — :func:`~listener.notifiers.base.attempt_timeout`.
  A receiver slower than ``timeout_s`` usually goes on processing the request
  we stopped waiting for; with the same timeout every retry would repeat it
  and none would see the answer.

The guarantee is *at least once*.  A notice is sent again after a timeout
(the receiver may have processed the first attempt) and after a crash
*after* a receiver accepted it but *before* the row was marked delivered.
Every notifier passes a stable de-duplication key where the receiver has one
— PagerDuty ``dedup_key`` (the crisis id: one incident per crisis), the
webhook's ``Idempotency-Key`` and ``X-Crisiswatch-Alert-Id`` (the notice id,
the same on every attempt), e-mail ``Message-ID`` — so a receiver that
honours it sees each notice once.  Slack has none: a Slack webhook slower
than the timeout can still post a notice twice (once per timed-out attempt,
and with the growing timeout usually once at most).

Time is the wall clock here (not event time): this is about delivering now.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .notifiers.base import Notifier, NotifierError, delivery_attempt

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id     TEXT NOT NULL,                     -- the notice id (an alert id, or derived from one)
    receiver     TEXT NOT NULL,
    crisis_id    TEXT NOT NULL,
    seq          INTEGER NOT NULL,                  -- notice number within the crisis (sets the order)
    payload      BLOB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | dead | silenced
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error   TEXT,
    created      REAL NOT NULL,
    delivered    REAL,
    PRIMARY KEY (alert_id, receiver)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt);
CREATE INDEX IF NOT EXISTS deliveries_crisis ON deliveries (crisis_id, receiver, seq);
"""

ACTION_PREFIX = "action:"
"""Receivers named ``action:<name>`` are actions (see :mod:`listener.notifiers.action`): sent first."""


@dataclass(frozen=True)
class Notice:
    """One notification to write: the same payload for each of ``receivers``."""

    id: str
    crisis_id: str
    seq: int
    payload: Mapping[str, Any]
    receivers: tuple[str, ...]
    silenced: bool = False
    """Recorded (status ``silenced``) for the audit trail, never sent."""


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    receiver: str
    crisis_id: str
    event: dict[str, Any]
    attempts: int
    created: float


class Outbox:
    """The SQLite database in the data directory: deliveries here, the on-call state in
    :mod:`listener.oncall` (same file, same transactions)."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable write (also across processes: ``crisiswatch ack`` writes here too)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite already rolled back after "database or disk is full"
                    self._db.execute("ROLLBACK")
                raise

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._db.execute(sql, tuple(args))
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]  # type: ignore[misc]

    def write(self, db: sqlite3.Connection, notices: Sequence[Notice]) -> int:
        """Store each notice for each of its receivers inside ``db``'s transaction; returns the rows added.

        Existing (notice id, receiver) rows are left alone: writing the same notice twice adds nothing.
        """
        now = self.clock()
        rows = [(n.id, r, n.crisis_id, n.seq, orjson.dumps(n.payload), "silenced" if n.silenced else "pending",
                 now, now) for n in notices for r in n.receivers]
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO deliveries (alert_id, receiver, crisis_id, seq, payload, status, next_attempt, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return db.total_changes - before

    def enqueue(self, notices: Sequence[Notice]) -> int:
        """:meth:`write` in a transaction of its own."""
        with self.transaction() as db:
            return self.write(db, notices)

    def due(self, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due and whose crisis's earlier notices to the same
        receiver are no longer pending; actions first, then oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT alert_id, receiver, crisis_id, payload, attempts, created FROM deliveries d "
                "WHERE status = 'pending' AND next_attempt <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM deliveries e WHERE e.crisis_id = d.crisis_id AND e.receiver = d.receiver"
                "  AND e.seq < d.seq AND e.status = 'pending') "
                "ORDER BY substr(receiver, 1, ?) != ?, created, seq, alert_id, receiver LIMIT ?",
                (self.clock(), len(ACTION_PREFIX), ACTION_PREFIX, limit)).fetchall()
        return [Delivery(a, r, c, orjson.loads(p), n, t) for a, r, c, p, n, t in rows]

    def mark_delivered(self, d: Delivery) -> None:
        self._update("UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered = ?, "
                     "last_error = NULL WHERE alert_id = ? AND receiver = ?", (self.clock(), d.alert_id, d.receiver))

    def mark_retry(self, d: Delivery, error: str, at: float) -> None:
        self._update("UPDATE deliveries SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
                     "WHERE alert_id = ? AND receiver = ?", (at, error[:1000], d.alert_id, d.receiver))

    def mark_dead(self, d: Delivery, error: str) -> None:
        self._update("UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = ? "
                     "WHERE alert_id = ? AND receiver = ?", (error[:1000], d.alert_id, d.receiver))

    def _update(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def backlog(self, timeout_s: float = 2.0) -> dict[str, tuple[int, float]]:
        """Pending deliveries per receiver: (how many, ``created`` of the oldest) — the metrics' outbox depth.

        Read on a connection of its own, opened for the call: a scrape never waits behind the notify loop's
        transaction (which can wait ``busy_timeout_s`` for another process's lock) nor takes part in it, and
        in WAL mode a reader is not blocked by a writer.  Raises ``sqlite3.Error`` after ``timeout_s``."""
        db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        try:
            db.execute("PRAGMA query_only = 1")
            rows = db.execute("SELECT receiver, COUNT(*), MIN(created) FROM deliveries WHERE status = 'pending' "
                              "GROUP BY receiver").fetchall()
        finally:
            db.close()
        return {receiver: (n, oldest) for receiver, n, oldest in rows}

    def counts(self) -> dict[str, int]:
        """Deliveries by status (for logs and metrics)."""
        with self._lock:
            return dict(self._db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())

    def rows(self, status: str | None = None, crisis_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT alert_id, receiver, crisis_id, seq, status, attempts, last_error, created, delivered "
               "FROM deliveries WHERE (? IS NULL OR status = ?) AND (? IS NULL OR crisis_id = ?) "
               "ORDER BY created, seq, alert_id, receiver")
        return self.read(sql, (status, status, crisis_id, crisis_id))

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class DispatchSettings:
    """The ``[outbox]`` table."""

    path: str = ""
    """SQLite file of the outbox; required when ``[[receivers]]`` are configured."""
    backoff_s: float = 5.0
    max_backoff_s: float = 600.0
    give_up_after_s: float = 24 * 3600.0
    """A delivery still failing this long after its alert was written is marked dead."""
    rate_per_minute: float = 30.0
    """At most this many sends a minute to one receiver."""
    poll_s: float = 1.0
    busy_timeout_s: float = 30.0
    """How long one write waits for another process's lock on the database (``crisiswatch ack``, a backup)
    before it fails with "database is locked" and is retried."""
    max_unavailable_s: float = 300.0
    """How long notify may go on failing to write the database (locked, disk full) before it exits non-zero
    so that its supervisor restarts it; meanwhile it retries, ``/readyz`` and ``/healthz`` answer 503 and
    ``/livez`` 200 (past it, ``/livez`` fails too, should the process not have exited)."""


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        notifiers: Mapping[str, Notifier],
        settings: DispatchSettings | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        decorate: Callable[[Delivery], Mapping[str, Any]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.decorate = decorate or (lambda d: d.event)
        """The payload as sent: the on-call engine adds what is true *now* (acknowledgement, actions)."""
        self.notifiers = dict(notifiers)
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self._next_send: dict[str, float] = {}
        self._unrecorded: list[Delivery] = []
        """Taken by their receivers, not yet marked delivered (the outbox could not be written)."""
        self.sent = 0
        self.failed = 0
        self.dead = 0
        self.sent_by: Counter[str] = Counter()
        """Deliveries a receiver took, per receiver (the metrics; written by the notify loop only)."""
        self.failed_by: Counter[str] = Counter()
        """Failed attempts per receiver, retried or given up."""
        self.dead_by: Counter[str] = Counter()
        """Deliveries given up per receiver (refused for good, failing past ``give_up_after_s``, or to a
        receiver no longer configured)."""
        self.heartbeat: Callable[[], None] = lambda: None
        """Called before every attempt: the notify loop's liveness (a round of slow receivers is progress)."""

    def run_once(self) -> int:
        """Attempt every due delivery (respecting each receiver's rate); returns attempts made.

        A write that fails (``sqlite3.OperationalError``: the database is locked, the disk is full) ends the
        round.  What a receiver already took is remembered and marked delivered first at the next round, and
        nothing is sent before it is: it is not sent again, and sending on while nothing can be recorded would
        repeat every one of those notices after a restart.
        """
        self._record()
        attempts = 0
        spacing = 60.0 / self.settings.rate_per_minute
        for d in self.outbox.due():
            now = self.clock()
            if self._next_send.get(d.receiver, 0.0) > now:
                continue  # rate-limited: stays due, picked up at a later run
            notifier = self.notifiers.get(d.receiver)
            if notifier is None:
                self.outbox.mark_dead(d, f"receiver {d.receiver!r} is no longer configured")
                self.dead += 1
                self.dead_by[d.receiver] += 1
                continue
            self._next_send[d.receiver] = now + spacing
            attempts += 1
            self.heartbeat()
            try:
                with delivery_attempt(d.attempts + 1):  # each retry waits longer for the receiver's answer
                    notifier.send(self.decorate(d))
            except NotifierError as exc:
                self._failed(d, exc, now)
                continue
            except Exception as exc:  # a bug in a notifier must not stop the others
                # Only the exception's type: its message or traceback could hold a secret.
                log.error("notifier %s crashed on %s: %s", d.receiver, d.alert_id, type(exc).__name__)
                self._failed(d, NotifierError(f"notifier crashed: {type(exc).__name__}", retryable=True), now)
                continue
            self._unrecorded.append(d)
            self._record()
        return attempts

    def _record(self) -> None:
        """Mark what the receivers took as delivered, oldest first; a failed write keeps the rest for later."""
        while self._unrecorded:
            d = self._unrecorded[0]
            self.outbox.mark_delivered(d)
            self._unrecorded.pop(0)
            self.sent += 1
            self.sent_by[d.receiver] += 1
            log.info("delivered %s to %s", d.alert_id, d.receiver)

    def _failed(self, d: Delivery, exc: NotifierError, now: float) -> None:
        self.failed += 1
        self.failed_by[d.receiver] += 1
        error = str(exc)
        if not exc.retryable or now - d.created >= self.settings.give_up_after_s:
            self.outbox.mark_dead(d, error)
            self.dead += 1
            self.dead_by[d.receiver] += 1
            log.error("giving up delivering %s to %s: %s", d.alert_id, d.receiver, error)
            return
        delay = exc.retry_after_s if exc.retry_after_s is not None else self.backoff(d.attempts + 1)
        self.outbox.mark_retry(d, error, now + delay)
        log.warning("delivery of %s to %s failed (%s); attempt %d, next in %.0f s", d.alert_id, d.receiver,
                    error, d.attempts + 1, delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, at least a second."""
        cap = min(self.settings.max_backoff_s, self.settings.backoff_s * 2 ** (attempt - 1))
        return max(1.0, self.rng.uniform(0, cap))

    def run(self, stop: threading.Event) -> None:
        """Dispatch until ``stop`` is set, then one last round."""
        while not stop.is_set():
            self.run_once()
            stop.wait(self.settings.poll_s)
        self.run_once()
