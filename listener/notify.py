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
next to the database): two dispatchers would send every notice twice.
``crisiswatch run`` runs this role in a thread next to the listener.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from connectors.kafka import BrokerError, Consumer, Producer
from connectors.publish import dlq_headers
from detectors import AlertEvent

from .config import Config, ConfigError
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
    return OnCallStore(Outbox(config.outbox.path, clock=clock), config.oncall.ack_target_minutes)


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
    store = OnCallStore(Outbox(config.outbox.path, clock=clock), config.oncall.ack_target_minutes)
    store.replace_config_silences(silences)
    engine = OnCall(store, router, list(actions.values()), clock)
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


class Notify:
    """One notify process: alerts topic → on-call engine → outbox → notifiers (see module docstring)."""

    def __init__(self, config: Config, stack: OnCallStack, producer: Producer,
                 consumer_factory: Callable[..., Consumer] = Consumer) -> None:
        self.config = config
        self.stack = stack
        self.producer = producer
        self.consumer = consumer_factory(config.kafka, [config.kafka.alerts_topic], group_id=config.oncall.group_id)
        self.events = 0
        self.broker_errors = 0
        self.dead_letters: Counter[str] = Counter()

    def step(self, timeout_ms: int | None = None) -> int:
        """Poll, handle, commit, tick, dispatch; returns the alert events taken."""
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
                    self.producer.send(self.config.kafka.dlq_topic, value or b"", key=batch.key(i),
                                       headers=dlq_headers("bad_alert_event", reason, origin))
                    log.error("alert event %s cannot be read (%s): sent to %s", origin, reason,
                              self.config.kafka.dlq_topic)
        if self.dead_letters:
            self.producer.flush()
        self.stack.engine.handle(events)
        self.consumer.commit({b.position: b.next_offset for b in batches})
        self.events += len(events)
        self.stack.engine.tick()
        self.stack.dispatcher.run_once()
        return len(events)

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> None:
        """Step until ``stop``.  Kafka failing (a poll, commit or dead-letter delivery) does not end it: what
        was handled is already in the outbox, events read again later are recognised as replays, so it waits
        with backoff and goes on — dispatching what is due from the outbox meanwhile."""
        backoff = 1.0
        with single_instance(str(self.stack.outbox.path)):
            try:
                while not stop.is_set() and not (until and until()):
                    try:
                        self.step()
                        backoff = 1.0
                    except BrokerError as exc:
                        self.broker_errors += 1
                        log.error("Kafka unavailable (%s); notices already in the outbox still go out; retrying "
                                  "in %.0f s", exc, backoff)
                        self.stack.engine.tick()
                        self.stack.dispatcher.run_once()
                        stop.wait(backoff)
                        backoff = min(2 * backoff, 30.0)
                self.stack.dispatcher.run_once()
            finally:
                self.consumer.close()
