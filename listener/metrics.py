"""``/metrics`` (Prometheus) and ``/healthz`` for a listener: ``[listener] metrics_listen = "host:port"``.

Why a collector and not counters in the loop: the listener already counts
everything it does (:class:`~listener.service.ListenerStats`, the pipeline's
:class:`~listener.pipeline.Counters`); a custom collector reads those at
scrape time, so the hot path pays nothing and there is one source of truth.
The loop is the only writer; a scrape reads ints and small dicts, which is
safe under the GIL.  The consumer itself is never touched from the HTTP
thread (kafka-python's consumer is not thread-safe): lag and assignment are
recorded by the loop after each poll.

Metrics (all prefixed ``crisiswatch_``): ``mentions_consumed_total``,
``mentions_processed_total``, ``dead_letters_total{reason}``,
``late_mentions_total``, ``duplicate_mentions_total``,
``alerts_total{status}``, ``dedup_early_rotations_total``,
``broker_errors_total``, ``degraded``, ``state_snapshots_total``, ``restored_brands_total``,
``batch_seconds`` (summary: count and sum), ``consumer_lag{topic,partition}``,
``assigned_partitions``, ``brands``, ``brands_in_phase{phase}`` (quiet, watch, crisis,
resolving: how many brands are in a crisis now), ``held_back_minutes`` (minutes
the baselines have not learned yet, summed over brands: ``window_minutes`` a
brand normally, up to ``max_holdback_minutes`` while its excess is suspect or
a crisis runs — a sum far above brands x window means much of the talk is not
being learned as normal), ``last_poll_timestamp_seconds``,
``last_commit_timestamp_seconds``, ``last_snapshot_timestamp_seconds`` (its
age is the snapshot age: ``time() - crisiswatch_last_snapshot_timestamp_seconds``).

``/healthz`` answers 200 when the listener is live *and* ready, else 503,
with a JSON body saying which: *live* = the loop polled within
``stale_after_s`` (a hung loop or a broker that stopped answering fails it);
*ready* = it owns at least one partition and Kafka answers (not degraded).  Lag is reported, not judged: a
backlog after an outage is work to do, not a failure.

Under ``crisiswatch run`` the notify role shares the process, so both cover it
too: ``/healthz`` is also 503 while notify cannot write its outbox (body
``notify``: the reason and for how long), and ``/metrics`` adds
``outbox_unavailable`` (1 meanwhile, else 0) and ``outbox_write_errors_total``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
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
        yield GaugeMetricFamily("crisiswatch_held_back_minutes",
                                "Minutes not yet learned by the brands' baselines, summed over brands.",
                                value=sum(b.detector.held_back_minutes for b in brands))
        for name, value in (("last_poll", stats.last_poll), ("last_commit", stats.last_commit),
                            ("last_snapshot", stats.last_snapshot)):
            if value is not None:
                yield GaugeMetricFamily(f"crisiswatch_{name}_timestamp_seconds",
                                        f"Wall-clock time of the {name.replace('_', ' ')}.", value=value)
        if self.notify is not None:
            yield GaugeMetricFamily("crisiswatch_outbox_unavailable",
                                    "1 while notify cannot write its outbox (nothing is sent), else 0.",
                                    value=int(self.notify.since is not None))
            yield counter("outbox_write_errors", "Notify cycles that failed to write the outbox (then retried).",
                          self.notify.errors)


def health(listener: Listener, stale_after_s: float = 60.0, now: float | None = None,
           notify: OutboxHealth | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of ``/healthz``); ``notify``: the notify role in the same process."""
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
def serving(listener: Listener, address: tuple[str, int], stale_after_s: float = 60.0,
            notify: OutboxHealth | None = None, http: HttpSettings | None = None) -> Iterator[tuple[str, int]]:
    """Serve ``/metrics`` and ``/healthz`` in a thread for the block; yields the bound (host, port).
    ``http``: the ``[http]`` limits (connections, request deadline); a request body over 1 KiB is 413."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ListenerCollector(listener, notify))  # type: ignore[arg-type]

    class Handler(HardenedHandler):
        http_log = log
        log_name = "metrics"

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                status, body, kind = 200, generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"
            elif path == "/healthz":
                ok, doc = health(listener, stale_after_s, notify=notify)
                status, body, kind = (200 if ok else 503), orjson.dumps(doc), "application/json"
            else:
                status, body, kind = 404, b'{"error": "try /metrics or /healthz"}', "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_in_thread(address, Handler, "metrics and health", (http or HttpSettings()).limits(1024)) as bound:
        yield bound
