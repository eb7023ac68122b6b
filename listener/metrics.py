"""``/metrics`` (Prometheus) and the probes of both roles.

A listener serves them on ``[listener] metrics_listen = "host:port"`` (:func:`serving`), a notify role on
``[oncall] metrics_listen`` (:func:`serving_notify`); under ``crisiswatch run`` both roles share the process
and the listener's server covers the notify role too (its metric names are its own: nothing clashes).

Why a collector and not counters in the loop: the listener already counts
everything it does (:class:`~listener.service.ListenerStats`, the pipeline's
:class:`~listener.pipeline.Counters`); a custom collector reads those at
scrape time, so the hot path pays nothing and there is one source of truth.
The loop is the only writer; a scrape reads ints and small dicts, which is
safe under the GIL.  The consumer itself is never touched from the HTTP
thread (kafka-python's consumer is not thread-safe): lag and assignment are
recorded by the loop after each poll.  The notify role likewise
(:class:`NotifyCollector`): its loop's, dispatcher's and on-call engine's
counters, and the outbox's backlog read at scrape time on a connection of
its own.

Listener metrics (all prefixed ``crisiswatch_``): ``mentions_consumed_total``,
``mentions_processed_total``, ``dead_letters_total{reason}``,
``late_mentions_total``, ``duplicate_mentions_total``,
``alerts_total{status}``, ``dedup_early_rotations_total``,
``broker_errors_total``, ``degraded``, ``state_snapshots_total``, ``restored_brands_total``,
``batch_seconds`` (summary: count and sum), ``consumer_lag{topic,partition}``,
``assigned_partitions``, ``brands``, ``split_brands``, ``brands_in_phase{phase}`` (quiet, watch, crisis,
resolving: how many brands are in a crisis now), ``held_back_seconds`` (time
the baselines have not learned yet, summed over brands: ``window_minutes`` a
brand normally, up to ``max_holdback_minutes`` while its excess is suspect or
a crisis runs — a sum far above brands x window means much of the talk is not
being learned as normal; in seconds, Prometheus's base unit), ``last_poll_timestamp_seconds``,
``last_commit_timestamp_seconds``, ``last_snapshot_timestamp_seconds`` (its
age is the snapshot age: ``time() - crisiswatch_last_snapshot_timestamp_seconds``).

Notify metrics: ``deliveries_sent_total{receiver}``, ``delivery_failures_total{receiver}`` (failed
attempts, retried or not), ``deliveries_dead_total{receiver}`` (given up), ``outbox_pending_deliveries{receiver}``
(the backlog), ``outbox_oldest_pending_age_seconds{receiver}`` (0 when none is pending),
``escalations_total{route}``, ``acknowledgements_total{within_target}``, ``outbox_unavailable`` (1 while
the outbox cannot be written: nothing is sent), ``outbox_write_errors_total``,
``notify_alert_events_total``, ``notify_broker_errors_total``, ``notify_dead_letters_total{reason}``,
``notify_last_cycle_timestamp_seconds``.  Every configured receiver and route has its series from the
start (at 0), so ``rate()`` and ``increase()`` see the first failure.

Probes (JSON bodies saying why):

* ``/livez`` — is the process worth keeping (a Kubernetes liveness probe; 503 = restart it): the listener
  polled within ``stale_after_s``; the notify loop turned within its stale bound and its outbox can be
  written or the outage is within ``max_unavailable_s``.  A spare listener (no partition: more replicas than
  partitions) and a listener whose Kafka is down are live: a restart fixes neither.
* ``/readyz`` — does it do its work now (a readiness probe, the dashboard): the listener owns at least one
  partition and Kafka answers (not degraded); notify can write its outbox.  Lag is reported, not judged: a
  backlog after an outage is work to do, not a failure.
* ``/healthz`` — kept as it was for the probes and scripts that ask it: live *and* ready (and, under
  ``crisiswatch run``, notify's outbox writable).  Do not use it as a liveness probe: it fails for a spare
  listener, which would then be restarted forever.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from connectors.http_server import HardenedHandler
from detectors.lifecycle import Phase

from .api import serve_in_thread
from .config import HttpSettings

if TYPE_CHECKING:
    from .notify import OutboxHealth
    from .service import Listener

log = logging.getLogger(__name__)


class ListenerCollector:
    def __init__(self, listener: Listener, notify: OutboxHealth | None = None) -> None:
        self.listener = listener
        self.notify = notify

    def collect(self) -> Iterator[Any]:
        stats, pipeline = self.listener.stats, self.listener.pipeline
        c = pipeline.counters

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"crisiswatch_{name}", doc, value=value)

        yield counter("mentions_consumed", "Records read from the mentions topic.", stats.consumed)
        yield counter("mentions_processed", "Mentions scored and bucketed (not duplicates).", c.processed)
        yield counter("late_mentions", "Mentions for a minute already closed (counted, not added).", c.late)
        yield counter("duplicate_mentions", "Mentions dropped as duplicates of an earlier (source, id).",
                      c.duplicates)
        yield counter("broker_errors", "Cycles that failed because Kafka did not answer (then retried).",
                      stats.broker_errors)
        yield GaugeMetricFamily("crisiswatch_degraded", "1 while Kafka is failing, else 0.",
                                value=int(stats.degraded_since is not None))
        yield counter("state_snapshots", "State snapshots written to the state topic.", stats.snapshots)
        yield counter("restored_brands", "Brands restored from the state topic.", stats.restored_brands)
        yield counter("dedup_early_rotations", "Times a brand's id memory was full and dropped its older half.",
                      pipeline.dedup_rotations)
        dead = CounterMetricFamily("crisiswatch_dead_letters", "Records sent to the dead-letter topic.",
                                   labels=["reason"])
        for reason, n in sorted(stats.dead_letters.items()):
            dead.add_metric([reason], n)
        yield dead
        alerts = CounterMetricFamily("crisiswatch_alerts", "Alert events emitted.", labels=["status"])
        for status, n in sorted(stats.alerts.items()):
            alerts.add_metric([status], n)
        yield alerts
        yield SummaryMetricFamily("crisiswatch_batch_seconds", "Time to process a batch (decode to commit).",
                                  count_value=stats.batches, sum_value=stats.batch_seconds)
        lag = GaugeMetricFamily("crisiswatch_consumer_lag", "Records behind the end of the partition.",
                                labels=["topic", "partition"])
        for (topic, partition), n in sorted(dict(stats.lag).items()):
            lag.add_metric([topic, str(partition)], n)
        yield lag
        yield GaugeMetricFamily("crisiswatch_assigned_partitions", "Partitions this listener owns.",
                                value=len(stats.assigned))
        brands = list(pipeline.brands.values())
        yield GaugeMetricFamily("crisiswatch_brands", "Brands tracked.", value=len(brands))
        yield GaugeMetricFamily("crisiswatch_split_brands",
                                "Brands seen on more than one partition (a producer partitions them differently).",
                                value=len(stats.split_brands))
        phases = Counter(b.detector.lifecycle.phase for b in brands)
        in_phase = GaugeMetricFamily("crisiswatch_brands_in_phase", "Brands per lifecycle phase.", labels=["phase"])
        for phase in Phase:
            in_phase.add_metric([phase.value], phases[phase])
        yield in_phase
        yield GaugeMetricFamily("crisiswatch_held_back_seconds",
                                "Time not yet learned by the brands' baselines, summed over brands.",
                                value=60 * sum(b.detector.held_back_minutes for b in brands))
        for name, value in (("last_poll", stats.last_poll), ("last_commit", stats.last_commit),
                            ("last_snapshot", stats.last_snapshot)):
            if value is not None:
                yield GaugeMetricFamily(f"crisiswatch_{name}_timestamp_seconds",
                                        f"Wall-clock time of the {name.replace('_', ' ')}.", value=value)
        if self.notify is not None:  # crisiswatch run: the notify role in the same process
            yield from NotifyCollector(self.notify).collect()


class NotifyCollector:
    """The notify role's metrics (see the module docstring), read at scrape time from its :class:`OutboxHealth
    <listener.notify.OutboxHealth>` and the loop registered there (none yet: only the outbox's health)."""

    def __init__(self, health: OutboxHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Any]:
        health = self.health

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"crisiswatch_{name}", doc, value=value)

        def labelled(name: str, doc: str, label: str, values: Mapping[Any, float], keys: Any,
                     kind: type = CounterMetricFamily) -> Any:
            family = kind(f"crisiswatch_{name}", doc, labels=[label])
            for key in sorted(keys, key=str):
                family.add_metric([str(key).lower() if isinstance(key, bool) else str(key)], values.get(key, 0))
            return family

        yield GaugeMetricFamily("crisiswatch_outbox_unavailable",
                                "1 while notify cannot write its outbox (nothing is sent), else 0.",
                                value=int(health.since is not None))
        yield counter("outbox_write_errors", "Notify cycles that failed to write the outbox (then retried).",
                      health.errors)
        if health.last_beat_wall is not None:
            yield GaugeMetricFamily("crisiswatch_notify_last_cycle_timestamp_seconds",
                                    "Wall-clock time the notify loop last made progress.", value=health.last_beat_wall)
        loop = health.loop
        if loop is None:
            return
        dispatcher, engine, outbox = loop.stack.dispatcher, loop.stack.engine, loop.stack.outbox
        yield counter("notify_alert_events", "Alert events the notify role took from the alerts topic.", loop.events)
        yield counter("notify_broker_errors", "Notify cycles that failed because Kafka did not answer (then retried).",
                      loop.broker_errors)
        dead_letters = dict(loop.dead_letters)
        yield labelled("notify_dead_letters", "Alert events that could not be read, sent to the dead-letter topic.",
                       "reason", dead_letters, {"bad_alert_event", *dead_letters})
        sent, failed, dead = dict(dispatcher.sent_by), dict(dispatcher.failed_by), dict(dispatcher.dead_by)
        try:
            backlog = outbox.backlog()
        except sqlite3.Error as exc:  # the counters are still worth a scrape
            log.warning("metrics: cannot read the outbox's backlog (%s)", exc)
            backlog = None
        receivers = {*dispatcher.notifiers, *sent, *failed, *dead, *(backlog or {})}
        yield labelled("deliveries_sent", "Deliveries a receiver took.", "receiver", sent, receivers)
        yield labelled("delivery_failures", "Failed delivery attempts (retried later, or given up).", "receiver",
                       failed, receivers)
        yield labelled("deliveries_dead", "Deliveries given up: refused for good, failing past give_up_after_s, "
                       "or to a receiver no longer configured.", "receiver", dead, receivers)
        if backlog is not None:
            now = outbox.clock()
            yield labelled("outbox_pending_deliveries", "Deliveries waiting in the outbox (due, retrying, or "
                           "behind an earlier notice of their crisis).", "receiver",
                           {r: n for r, (n, _) in backlog.items()}, receivers, GaugeMetricFamily)
            yield labelled("outbox_oldest_pending_age_seconds", "Age of the oldest delivery still waiting "
                           "(0 when none is).", "receiver",
                           {r: max(0.0, now - oldest) for r, (_, oldest) in backlog.items()}, receivers,
                           GaugeMetricFamily)
        escalations = dict(engine.escalations)
        yield labelled("escalations", "Pages escalated to their next level because nobody acknowledged.", "route",
                       escalations, {*engine.router.by_name, *escalations})
        yield labelled("acknowledgements", "Crises acknowledged, by whether within [oncall] ack_target_minutes.",
                       "within_target", dict(engine.acknowledgements), (True, False))


Probe = Callable[[], tuple[bool, dict[str, Any]]]
"""(ok, the JSON body): 200 or 503."""


def liveness(listener: Listener, stale_after_s: float = 60.0, now: float | None = None,
             notify: OutboxHealth | None = None) -> tuple[bool, dict[str, Any]]:
    """(live, the JSON body of ``/livez``): the loop polled within ``stale_after_s`` (and the notify role in
    the same process is live).  Not live is what a restart fixes."""
    stats = listener.stats
    now = time.time() if now is None else now
    poll_age = None if stats.last_poll is None else now - stats.last_poll
    live = poll_age is not None and poll_age <= stale_after_s
    body: dict[str, Any] = {"status": "ok" if live else "not live", "live": live,
                            "last_poll_age_s": None if poll_age is None else round(poll_age, 1),
                            "stale_after_s": stale_after_s}
    if notify is not None:
        notify_live, body["notify"] = notify.live()
        live = live and notify_live
        body["status"] = "ok" if live else "not live"
    return live, body


def readiness(listener: Listener, now: float | None = None,
              notify: OutboxHealth | None = None) -> tuple[bool, dict[str, Any]]:
    """(ready, the JSON body of ``/readyz``): owns a partition and Kafka answers (and the notify role in the
    same process can write its outbox)."""
    stats = listener.stats
    now = time.time() if now is None else now
    degraded = stats.degraded_since is not None
    ready = bool(stats.assigned) and not degraded
    body: dict[str, Any] = {
        "status": "ok" if ready else "degraded" if degraded else "not ready",
        "ready": ready,
        "assigned_partitions": [f"{t}/{p}" for t, p in stats.assigned],
        "degraded_for_s": round(now - stats.degraded_since, 1) if stats.degraded_since is not None else None,
        "lag": sum(stats.lag.values()),
    }
    if notify is not None:
        notify_ready, body["notify"] = notify.ready()
        if ready and not notify_ready:
            body["status"] = body["notify"]["status"]
        ready = ready and notify_ready
        body["ready"] = ready
    return ready, body


def health(listener: Listener, stale_after_s: float = 60.0, now: float | None = None,
           notify: OutboxHealth | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of ``/healthz``); ``notify``: the notify role in the same process.

    Kept as it was for compatibility (the probes and scripts that already ask ``/healthz``): live *and* ready
    in one answer.  It fails for a spare listener with no partition, so it is no liveness probe: use
    :func:`liveness` (``/livez``) and :func:`readiness` (``/readyz``)."""
    stats = listener.stats
    now = time.time() if now is None else now
    poll_age = None if stats.last_poll is None else now - stats.last_poll
    live = poll_age is not None and poll_age <= stale_after_s
    degraded = stats.degraded_since is not None
    ready = bool(stats.assigned) and not degraded
    body = {
        "status": "ok" if live and ready else "not live" if not live else "degraded" if degraded else "not ready",
        "live": live,
        "ready": ready,
        "assigned_partitions": [f"{t}/{p}" for t, p in stats.assigned],
        "last_poll_age_s": None if poll_age is None else round(poll_age, 1),
        "last_commit_age_s": None if stats.last_commit is None else round(now - stats.last_commit, 1),
        "lag": sum(stats.lag.values()),
        "degraded_for_s": round(now - stats.degraded_since, 1) if degraded else None,
        "last_snapshot_age_s": None if stats.last_snapshot is None else round(now - stats.last_snapshot, 1),
    }
    if notify is None:
        return live and ready, body
    notify_ok, body["notify"] = notify.check()
    if live and ready and not notify_ok:
        body["status"] = body["notify"]["status"]
    return live and ready and notify_ok, body


@contextmanager
def _serving(address: tuple[str, int], registry: CollectorRegistry, probes: Mapping[str, Probe],
             http: HttpSettings | None, name: str) -> Iterator[tuple[str, int]]:
    """Serve ``/metrics`` and ``probes`` (path -> probe) in a thread for the block; yields the bound (host, port).
    No token: read-only.  ``http``: the ``[http]`` limits (connections, request deadline); a body over 1 KiB
    is 413."""
    known = " or ".join(["/metrics", *probes])

    class Handler(HardenedHandler):
        http_log = log
        log_name = "metrics"

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                status, body, kind = 200, generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"
            elif path in probes:
                ok, doc = probes[path]()
                status, body, kind = (200 if ok else 503), orjson.dumps(doc), "application/json"
            else:
                status, body, kind = 404, orjson.dumps({"error": f"try {known}"}), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_in_thread(address, Handler, name, (http or HttpSettings()).limits(1024)) as bound:
        yield bound


def serving(listener: Listener, address: tuple[str, int], stale_after_s: float = 60.0,
            notify: OutboxHealth | None = None, http: HttpSettings | None = None) -> Any:
    """Serve the listener's ``/metrics``, ``/livez``, ``/readyz`` and ``/healthz`` in a thread for the block
    (a context manager yielding the bound (host, port)); ``notify``: the notify role in the same process,
    covered by all four."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ListenerCollector(listener, notify))  # type: ignore[arg-type]
    probes: dict[str, Probe] = {
        "/livez": lambda: liveness(listener, stale_after_s, notify=notify),
        "/readyz": lambda: readiness(listener, notify=notify),
        "/healthz": lambda: health(listener, stale_after_s, notify=notify),
    }
    return _serving(address, registry, probes, http, "metrics and health")


def serving_notify(health: OutboxHealth, address: tuple[str, int], http: HttpSettings | None = None) -> Any:
    """Serve the notify role's ``/metrics``, ``/livez``, ``/readyz`` and ``/healthz`` (``[oncall]
    metrics_listen``) in a thread for the block (a context manager yielding the bound (host, port)).

    Apart from the on-call API and without its token: that token acknowledges and silences, and a scraper or
    a kubelet must not hold what can mute a page.  The API may stay on loopback while this faces the network
    Prometheus scrapes from."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NotifyCollector(health))  # type: ignore[arg-type]
    return _serving(address, registry, {"/livez": health.live, "/readyz": health.ready, "/healthz": health.check},
                    http, "notify metrics and health")
