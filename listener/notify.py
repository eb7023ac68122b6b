"""The notify role: alert events from Kafka to the people on call.

Why a role of its own (Alertmanager's place next to Prometheus): listeners
scale out and each sees only its partitions' brands, but escalation,
acknowledgement, silences and the rate limits of a receiver need one place
that sees every crisis and sends each notice once.  So listeners only
publish alert events on the ``alerts`` topic, and exactly one ``crisiswatch
notify`` process (its own consumer group) turns them into notices:

1. poll alert events; one that cannot be read goes to the dead-letter topic
   with its reason (it came from a foreign producer or a newer version);
2. :meth:`OnCall.handle <listener.oncall.OnCall.handle>` writes the crisis
   state and the notices to the outbox in one SQLite transaction;
3. commit the offsets;
4. tick the on-call clock (escalations, repeats, silences, acknowledgements)
   and dispatch what is due.

A second notify process on the same outbox refuses to start (a lock file
next to the database, taken before the API's port is bound, so the error is
that one line): two dispatchers would send every notice twice.
``crisiswatch run`` runs this role in a thread next to the listener.

When the outbox cannot be written (another process holds SQLite's lock past
``[outbox] busy_timeout_s``, the disk is full) nothing can be sent — a notice
sent but not recorded would go out again — so the loop keeps the batch in hand
uncommitted, retries with backoff and says so (:class:`OutboxHealth`: one log
line when it starts and one when it ends, ``/readyz`` and ``/healthz`` 503,
``/livez`` still 200: a restart would not help).  Past ``[outbox]
max_unavailable_s`` it raises :class:`OutboxUnavailable`: the process exits
non-zero for its supervisor to restart it, rather than page nobody.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from connectors.kafka import BrokerError, Consumer, Position, Producer
from connectors.brands import rules_from_config
from connectors.publish import send_dead_letter
from detectors import AlertEvent

from .config import Config, ConfigError, Fatal
from .logs import RateLimitedLog
from .notifiers.action import build_actions
from .notifiers.base import Notifier
from .notifiers.registry import build_notifiers
from .oncall import OnCall, OnCallStore
from .outbox import Dispatcher, Outbox
from .routing import Router, routes_from_config

log = logging.getLogger(__name__)


def parse_time(value: Any, where: str) -> float:
    """A TOML datetime or an ISO-8601 string (``2026-11-24T09:00:00Z``) as epoch seconds; naive = UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where} must be a date-time like 2026-11-24T09:00:00Z, got {value!r}") from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
    raise ConfigError(f"{where} must be a date-time like 2026-11-24T09:00:00Z")


def silences_from_config(tables: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[[silences]]`` tables (brand and/or route, starts, ends, created_by, comment) checked."""
    out = []
    for i, t in enumerate(tables):
        where = f"silences[{i}]"
        keys = {"brand", "route", "starts", "ends", "created_by", "comment"}
        if set(t) - keys:
            raise ConfigError(f"unknown key {where}.{sorted(set(t) - keys)[0]}: known keys are "
                              f"{', '.join(sorted(keys))}")
        for key in ("created_by", "comment"):
            if not isinstance(t.get(key), str) or not t[key].strip():
                raise ConfigError(f"{where}.{key} is required: a silence says who muted what and why")
        if not t.get("brand") and not t.get("route"):
            raise ConfigError(f"{where}: set brand and/or route (a silence of everything would hide every crisis)")
        starts, ends = parse_time(t.get("starts"), f"{where}.starts"), parse_time(t.get("ends"), f"{where}.ends")
        if ends <= starts:
            raise ConfigError(f"{where}.ends must be after {where}.starts")
        out.append({"brand": str(t.get("brand", "")), "route": str(t.get("route", "")), "starts": starts,
                    "ends": ends, "created_by": t["created_by"], "comment": t["comment"]})
    return out


def open_store(config: Config, clock: Callable[[], float] = time.time) -> OnCallStore:
    """The on-call tables in the outbox database (what ``ack``, ``silence`` and ``crises`` use)."""
    if not config.outbox.path:
        raise ConfigError("[outbox] path is not set: it names the SQLite file that holds the crises, e.g. "
                          "path = \"/data/outbox.db\"")
    return OnCallStore(Outbox(config.outbox.path, clock, config.outbox.busy_timeout_s),
                       config.oncall.ack_target_minutes)


@dataclass
class OnCallStack:
    store: OnCallStore
    engine: OnCall
    dispatcher: Dispatcher

    @property
    def outbox(self) -> Outbox:
        return self.store.outbox


def build_oncall(config: Config, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> OnCallStack | None:
    """Receivers, actions, routes, silences and the outbox, checked at start-up (a bad receiver or a missing
    secret fails before anything runs); ``None`` when nothing is configured to notify."""
    env = os.environ if env is None else env
    if not config.receivers and not config.actions:
        if config.routes:
            raise ConfigError("[[routes]] name receivers, but no [[receivers]] are configured")
        return None
    if not config.outbox.path:
        raise ConfigError("[[receivers]] need a durable outbox: set [outbox] path = \"/data/outbox.db\"")
    notifiers: dict[str, Notifier] = dict(build_notifiers(config.receivers, env))
    actions = build_actions(config.actions, env)
    router = Router(routes_from_config(config.routes, list(notifiers)), list(notifiers))
    silences = silences_from_config(config.silences)
    store = OnCallStore(Outbox(config.outbox.path, clock, config.outbox.busy_timeout_s),
                        config.oncall.ack_target_minutes)
    store.replace_config_silences(silences)
    engine = OnCall(store, router, list(actions.values()), clock)
    store.know(router, (rule.name for rule in rules_from_config(config.brands)))  # silences via the API too
    dispatcher = Dispatcher(store.outbox, {**notifiers, **actions}, config.outbox, clock=clock, decorate=store.view)
    return OnCallStack(store, engine, dispatcher)


@contextmanager
def single_instance(outbox_path: str) -> Iterator[None]:
    """Hold ``<outbox>.lock`` for the block; fail with a clear error if another process holds it."""
    path = Path(f"{outbox_path}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise ConfigError(f"another crisiswatch notify (pid {f.read().strip() or '?'}) is using the outbox "
                              f"{outbox_path}: run exactly one notify process per outbox") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class OutboxUnavailable(Fatal):
    """The outbox could not be written for longer than ``[outbox] max_unavailable_s``."""


NOTIFY_STALE_AFTER_S = 120.0
"""The notify loop is live while it turned within this long (:meth:`OutboxHealth.beat`).  It beats at every
turn, after handling a batch, after the on-call tick and before every delivery attempt, so the longest
silence between two beats is one blocking step: a delivery attempt (at most 60 s, or a receiver's larger
``timeout_s``), a SQLite write waiting for a lock (``[outbox] busy_timeout_s``, 30 s), a Kafka request
(30 s), a backoff (at most 30 s).  Twice the longest of them: a stuck loop, not a slow receiver."""


class OutboxHealth:
    """Whether notify can write its outbox, how long to wait before trying again, and whether its loop turns.

    Written by the notify loop, read by the probes (``/livez``, ``/readyz``, ``/healthz``) and ``/metrics``
    from their own threads (plain attributes, read once each: safe under the GIL).  Waits double from 1 s
    to 10 s, never past the moment the outage reaches ``max_unavailable_s``, so the process exits on time.

    *Live* (:meth:`live`): the loop turned within ``stale_after_s`` and the outbox can be written or the
    outage is within ``max_unavailable_s`` (ridden out: a restart would not make the disk any less full).
    *Ready* (:meth:`ready`): the outbox can be written.  :meth:`check` is ``/healthz``'s, kept as it was
    (the same as ready).
    """

    def __init__(self, path: str, max_unavailable_s: float, clock: Callable[[], float] = time.monotonic,
                 stale_after_s: float = NOTIFY_STALE_AFTER_S) -> None:
        self.path = path
        self.max_unavailable_s = max_unavailable_s
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.since: float | None = None
        """When the current outage began (``clock`` time); None while the outbox can be written."""
        self.reason = ""
        self.failures = 0
        """Failed attempts in the current outage."""
        self.errors = 0
        """Failed attempts since the start (the metric)."""
        self.last_beat: float | None = None
        """When the loop last showed progress (``clock`` time); None before its first turn."""
        self.last_beat_wall: float | None = None
        """The same in wall-clock time (the metric ``crisiswatch_notify_last_cycle_timestamp_seconds``)."""
        self.loop: Notify | None = None
        """The notify loop this reports on (it registers itself), whose counters ``/metrics`` reads."""
        self._next_wait = 1.0

    def beat(self) -> None:
        """The loop made progress (a turn, a handled batch, a tick, a delivery attempt)."""
        self.last_beat = self.clock()
        self.last_beat_wall = time.time()

    def failed(self, exc: sqlite3.OperationalError) -> float:
        """A write failed: the seconds to wait before the next attempt.  Logged once per outage; raises
        :class:`OutboxUnavailable` once the outage has lasted ``max_unavailable_s``."""
        now = self.clock()
        self.errors += 1
        self.failures += 1
        self.reason = str(exc)
        if self.since is None:
            self.since = now
            log.error("the outbox %s cannot be written (%s): no notice goes out until it can; retrying, and "
                      "exiting if this lasts %g s ([outbox] max_unavailable_s)", self.path, exc,
                      self.max_unavailable_s)
        left = self.since + self.max_unavailable_s - now
        if left <= 0:
            raise OutboxUnavailable(f"the outbox {self.path} could not be written for {now - self.since:.0f} s "
                                    f"({exc}), the limit set by [outbox] max_unavailable_s = "
                                    f"{self.max_unavailable_s:g}: exiting so that a supervisor restarts it")
        wait, self._next_wait = self._next_wait, min(2 * self._next_wait, 10.0)
        return min(wait, left)

    def ok(self) -> None:
        """A step went through: the outage, if any, is over (logged once)."""
        if self.since is not None:
            log.warning("the outbox %s can be written again after %.1f s and %d failed attempts: delivery goes on",
                        self.path, self.clock() - self.since, self.failures)
        self.since, self.failures, self.reason, self._next_wait = None, 0, "", 1.0

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body of ``/healthz``): the outbox can be written.  Kept as it was for the
        probes that already ask ``/healthz``; a liveness probe should ask :meth:`live` (``/livez``)."""
        since = self.since
        if since is None:
            return True, {"status": "ok"}
        return False, {"status": "outbox unavailable",
                       "reason": f"the outbox {self.path} cannot be written: {self.reason}; nothing is sent",
                       "unavailable_for_s": round(self.clock() - since, 1), "failures": self.failures,
                       "exit_after_s": self.max_unavailable_s}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the JSON body of ``/readyz``): the outbox can be written, so notices go out."""
        ok, body = self.check()
        return ok, {**body, "ready": ok}

    def live(self) -> tuple[bool, dict[str, Any]]:
        """(live, the JSON body of ``/livez``): the loop turned within ``stale_after_s``, and the outbox can be
        written or its outage is within ``max_unavailable_s``.  Not live is what a restart fixes."""
        now, beat, since = self.clock(), self.last_beat, self.since
        age = None if beat is None else round(now - beat, 1)
        body: dict[str, Any] = {"status": "ok", "live": True, "last_cycle_age_s": age,
                                "stale_after_s": self.stale_after_s,
                                "outbox_unavailable_for_s": None if since is None else round(now - since, 1)}
        if beat is None:
            body.update(status="not started", live=False, reason="the notify loop has not turned yet")
        elif now - beat > self.stale_after_s:
            body.update(status="not live", live=False,
                        reason=f"the notify loop has not turned for {now - beat:.0f} s (stuck)")
        elif since is not None and now - since >= self.max_unavailable_s:
            body.update(status="not live", live=False,
                        reason=f"the outbox {self.path} could not be written for {now - since:.0f} s, past "
                               f"[outbox] max_unavailable_s = {self.max_unavailable_s:g}")
        return body["live"], body


class Notify:
    """One notify process: alerts topic → on-call engine → outbox → notifiers (see module docstring)."""

    def __init__(self, config: Config, stack: OnCallStack, producer: Producer,
                 consumer_factory: Callable[..., Consumer] = Consumer, health: OutboxHealth | None = None) -> None:
        self.config = config
        self.stack = stack
        self.producer = producer
        self.consumer = consumer_factory(config.kafka, [config.kafka.alerts_topic], group_id=config.oncall.group_id)
        self.health = health or OutboxHealth(str(stack.outbox.path), config.outbox.max_unavailable_s)
        self.health.loop = self  # /metrics reads this loop's counters through its health
        stack.dispatcher.heartbeat = self.health.beat  # a round of slow receivers is progress, not a stuck loop
        self.events = 0
        self.broker_errors = 0
        self.dead_letters: Counter[str] = Counter()
        self._bad_events_log = RateLimitedLog(log, "bad alert events")
        """At most 10 lines a minute for events that cannot be read (a foreign producer can send thousands)."""
        self._kafka_backoff = 1.0
        self._held: tuple[list[AlertEvent], dict[Position, int]] | None = None
        """Alert events polled but not yet in the outbox, with the offsets to commit once they are."""
        self._exclusive = False
        """Whether this process holds the outbox's single-instance lock through :meth:`exclusive`."""

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the outbox's single-instance lock (:func:`single_instance`) for the block; :meth:`run` inside it
        does not take it again.  :func:`~listener.app.run_notify` takes it *before* it binds the API's port, so a
        second notify fails with the one-line "another crisiswatch notify ..." error rather than with a
        traceback about the address in use.  A notify that cannot take it closes its consumer: it never runs."""
        if self._exclusive:
            yield
            return
        with ExitStack() as held:
            try:
                held.enter_context(single_instance(str(self.stack.outbox.path)))
            except ConfigError:
                self.consumer.close()
                raise
            self._exclusive = True
            try:
                yield
            finally:
                self._exclusive = False

    def step(self, timeout_ms: int | None = None) -> int:
        """Poll, handle, commit, tick, dispatch; returns the alert events taken.

        Events the outbox could not take (any exception from :meth:`OnCall.handle`) stay in hand, their
        offsets uncommitted, and are handled at the next step before anything new is polled: nothing is lost
        or committed past.  (An outage longer than kafka ``max_poll_interval_ms`` costs a rebalance: they are
        read again from the committed offset and recognised as replays.)
        """
        if self._held is None:
            self._held = self._poll(timeout_ms)
            if self.dead_letters:
                self.producer.flush()
        events, offsets = self._held
        self.stack.engine.handle(events)
        self._held = None
        self.health.beat()
        self.consumer.commit(offsets)
        self.events += len(events)
        self.stack.engine.tick()
        self.health.beat()
        self.stack.dispatcher.run_once()
        return len(events)

    def _poll(self, timeout_ms: int | None) -> tuple[list[AlertEvent], dict[Position, int]]:
        """The alert events of one poll and the offsets that follow them; what cannot be read is dead-lettered."""
        batches = self.consumer.poll(timeout_ms=self.config.listener.poll_timeout_ms if timeout_ms is None
                                     else timeout_ms)
        events: list[AlertEvent] = []
        for batch in batches:
            for i, value in enumerate(batch.values):
                try:
                    events.append(AlertEvent.from_dict(orjson.loads(value)))
                except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
                    origin = f"{batch.topic}/{batch.partition}/{batch.offset(i)}"
                    reason = f"bad_alert_event: {type(exc).__name__}: {exc}"[:300]
                    self.dead_letters["bad_alert_event"] += 1
                    send_dead_letter(self.producer, self.config.kafka.dlq_topic, value, batch.key(i),
                                     "bad_alert_event", reason, origin)
                    self._bad_events_log.error("bad_alert_event", "alert event %s cannot be read (%s): sent to %s",
                                               origin, reason, self.config.kafka.dlq_topic)
        self._bad_events_log.flush()
        return events, {b.position: b.next_offset for b in batches}

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> None:
        """Step until ``stop``.  Kafka failing (a poll, commit or dead-letter delivery) does not end it: what
        was handled is already in the outbox, events read again later are recognised as replays, so it waits
        with backoff and goes on — dispatching what is due from the outbox meanwhile.  The outbox failing to
        be written does not end it either, up to ``[outbox] max_unavailable_s`` (:class:`OutboxHealth`)."""
        with self.exclusive():
            try:
                while not stop.is_set() and not (until and until()):
                    self.health.beat()
                    try:
                        wait = self._cycle()
                        self.health.ok()
                    except sqlite3.OperationalError as exc:  # locked, disk full, I/O error
                        wait = self.health.failed(exc)
                    stop.wait(wait)
                if self.health.since is None:  # else what is due stays in the outbox for the next start
                    with suppress(sqlite3.OperationalError):  # ditto if the outbox has just become unwritable
                        self.stack.dispatcher.run_once()
            finally:
                self._bad_events_log.flush(force=True)
                self.consumer.close()

    def _cycle(self) -> float:
        """A step — or, while Kafka fails, a tick and a dispatch round; the seconds to wait before the next."""
        try:
            self.step()
        except BrokerError as exc:
            self.broker_errors += 1
            wait, self._kafka_backoff = self._kafka_backoff, min(2 * self._kafka_backoff, 30.0)
            log.error("Kafka unavailable (%s); notices already in the outbox still go out; retrying in %.0f s",
                      exc, wait)
            self.stack.engine.tick()
            self.stack.dispatcher.run_once()
            return wait
        self._kafka_backoff = 1.0
        return 0.0
