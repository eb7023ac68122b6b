"""/metrics and /healthz of a listener consuming from the real broker; JSON log lines."""

from __future__ import annotations

import logging
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from connectors.kafka import KafkaSettings, Producer
from connectors.mention import Mention, encode
from listener.alerts import MemorySink
from listener.config import Config, ListenerSettings
from listener.metrics import ListenerCollector, health, serving
from listener.notify import OutboxHealth
from listener.pipeline import Pipeline
from listener.service import Listener, ListenerStats
from tests.detectors.helpers import bucket


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.broker
def test_metrics_and_health_follow_the_listener(kafka: KafkaSettings) -> None:
    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    producer = Producer(kafka)
    for i in range(30):
        m = Mention(id=str(i), source="x", brand="acme", text="awful outage", created_at=t + timedelta(seconds=i))
        producer.send(kafka.mentions_topic, encode(m), key=b"acme")
    producer.send(kafka.mentions_topic, encode(m), key=b"acme")  # a duplicate
    producer.send(kafka.mentions_topic, b"{nope", key=b"acme")
    producer.flush()
    listener = Listener(Config(kafka=kafka, listener=ListenerSettings(console=False, poll_timeout_ms=200,
                                                                      snapshot_interval_s=0.0)),
                        producer, [MemorySink()])
    with serving(listener, ("127.0.0.1", 0)) as (host, port):
        base = f"http://{host}:{port}"
        status, body = get(base + "/healthz")
        assert status == 503 and orjson.loads(body)["live"] is False  # has not polled yet
        deadline = time.monotonic() + 60
        while listener.stats.consumed < 32 and time.monotonic() < deadline:
            listener.step()
        status, body = get(base + "/healthz")
        doc = orjson.loads(body)
        assert status == 200 and doc["live"] and doc["ready"] and doc["lag"] == 0, doc
        status, text = get(base + "/metrics")
        metrics = text.decode()
        assert status == 200
        for line in ("crisiswatch_mentions_consumed_total 32.0", "crisiswatch_mentions_processed_total 30.0",
                     "crisiswatch_duplicate_mentions_total 1.0",
                     'crisiswatch_dead_letters_total{reason="invalid_json"} 1.0', "crisiswatch_brands 1.0",
                     "crisiswatch_split_brands 0.0",
                     f'crisiswatch_consumer_lag{{partition="0",topic="{kafka.mentions_topic}"}}'):
            assert line in metrics, line
        assert "crisiswatch_batch_seconds_count" in metrics and "crisiswatch_assigned_partitions" in metrics
        assert "crisiswatch_last_snapshot_timestamp_seconds" in metrics  # snapshots after every batch here
        assert get(base + "/nope")[0] == 404
    listener.close()
    producer.close()
    assert health(listener, stale_after_s=60, now=time.time() + 3600)[1]["status"] == "not live"


def test_phases_and_held_back_seconds_are_counted_over_brands() -> None:
    """Read from the detectors at scrape time: acme quiet (one window of minutes waiting to be learned),
    globex in a crisis (its minutes held back since the crisis began).  In seconds: Prometheus's base unit
    (``promtool check metrics`` refuses ``_minutes``)."""
    pipeline = Pipeline()
    for brand in ("acme", "globex"):
        pipeline.admit(brand)
        for i in range(300):
            pipeline.brands[brand].detector.update(bucket(i, 10, 1, brand=brand))
    for i in range(300, 320):
        pipeline.brands["globex"].detector.update(bucket(i, 40, 30, brand="globex", texts=("data breach leaked passwords",) * 9))
    collector = ListenerCollector(type("L", (), {"stats": ListenerStats(), "pipeline": pipeline})())
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in collector.collect() for s in family.samples}
    assert samples[("crisiswatch_brands_in_phase", (("phase", "quiet"),))] == 1
    assert samples[("crisiswatch_brands_in_phase", (("phase", "crisis"),))] == 1
    assert samples[("crisiswatch_brands_in_phase", (("phase", "watch"),))] == 0
    assert not any(name == "crisiswatch_held_back_minutes" for name, _ in samples)
    held = samples[("crisiswatch_held_back_seconds", ())]
    assert held == 60 * (10 + pipeline.brands["globex"].detector.held_back_minutes)
    assert pipeline.brands["globex"].detector.held_back_minutes > 10


def test_health_and_metrics_cover_a_notify_role_that_cannot_write_its_outbox() -> None:
    """``crisiswatch run``: a healthy listener next to a notify that cannot send anything is not healthy."""
    clock = [1000.0]
    notify = OutboxHealth("/data/outbox.db", max_unavailable_s=300, clock=lambda: clock[0])
    stats = ListenerStats(assigned=(("mentions", 0),), last_poll=time.time())
    listener = type("L", (), {"stats": stats, "pipeline": Pipeline()})()

    def samples() -> dict[str, float]:
        return {s.name: s.value for family in ListenerCollector(listener, notify).collect()  # type: ignore[arg-type]
                for s in family.samples if s.name.startswith("crisiswatch_outbox")}

    assert health(listener, notify=notify) == (True, {**health(listener)[1], "notify": {"status": "ok"}})
    notify.failed(sqlite3.OperationalError("database or disk is full"))
    clock[0] += 12
    ok, doc = health(listener, notify=notify)
    assert not ok and doc["status"] == "outbox unavailable" and doc["notify"]["unavailable_for_s"] == 12
    assert "database or disk is full" in doc["notify"]["reason"]
    assert samples() == {"crisiswatch_outbox_unavailable": 1, "crisiswatch_outbox_write_errors_total": 1}
    notify.ok()
    assert health(listener, notify=notify)[0]
    assert samples() == {"crisiswatch_outbox_unavailable": 0, "crisiswatch_outbox_write_errors_total": 1}


def get_json(url: str) -> tuple[int, dict]:
    status, body = get(url)
    return status, orjson.loads(body)


def test_a_spare_listener_is_live_but_not_ready_and_healthz_is_kept_as_it_was() -> None:
    """A Kubernetes liveness probe restarts what fails it.  A spare listener (more replicas than partitions) or
    one whose Kafka is down is alive — a restart fixes nothing — so only ``/readyz`` says it does no work;
    ``/livez`` fails only for a loop that stopped polling.  ``/healthz`` still answers live *and* ready."""
    stats = ListenerStats(last_poll=time.time())
    spare = type("L", (), {"stats": stats, "pipeline": Pipeline()})()
    with serving(spare, ("127.0.0.1", 0), stale_after_s=60) as (host, port):  # type: ignore[arg-type]
        base = f"http://{host}:{port}"
        status, doc = get_json(base + "/livez")
        assert status == 200 and doc["live"] is True and doc["status"] == "ok", doc
        status, doc = get_json(base + "/readyz")
        assert status == 503 and doc["ready"] is False and doc["status"] == "not ready", doc
        assert doc["assigned_partitions"] == []
        assert get(base + "/healthz")[0] == 503  # unchanged: live and ready

        stats.assigned = (("mentions", 0),)
        assert get(base + "/readyz")[0] == 200 and get(base + "/healthz")[0] == 200

        stats.degraded_since = time.time() - 5  # Kafka fails: not ready, still live (nothing to restart)
        assert get(base + "/livez")[0] == 200
        status, doc = get_json(base + "/readyz")
        assert status == 503 and doc["status"] == "degraded" and doc["degraded_for_s"] >= 5, doc

        stats.last_poll = time.time() - 3600  # the loop is stuck: that one a restart fixes
        status, doc = get_json(base + "/livez")
        assert status == 503 and doc["status"] == "not live" and doc["last_poll_age_s"] >= 3600, doc
        assert get(base + "/nope")[0] == 404


def test_under_run_the_probes_cover_the_notify_role_too() -> None:
    """``crisiswatch run``: live while both loops turn (an outbox outage within ``max_unavailable_s`` is ridden
    out, not restarted); ready only while the outbox can be written."""
    clock = [1000.0]
    notify = OutboxHealth("/data/outbox.db", max_unavailable_s=300, clock=lambda: clock[0], stale_after_s=120)
    stats = ListenerStats(assigned=(("mentions", 0),), last_poll=time.time())
    listener = type("L", (), {"stats": stats, "pipeline": Pipeline()})()
    with serving(listener, ("127.0.0.1", 0), notify=notify) as (host, port):  # type: ignore[arg-type]
        base = f"http://{host}:{port}"
        status, doc = get_json(base + "/livez")
        assert status == 503 and doc["notify"]["status"] == "not started", doc  # its loop has not turned yet
        notify.beat()
        assert get(base + "/livez")[0] == 200 and get(base + "/readyz")[0] == 200
        notify.failed(sqlite3.OperationalError("database is locked"))
        clock[0] += 30
        notify.beat()
        status, doc = get_json(base + "/livez")
        assert status == 200 and doc["notify"]["live"] is True, doc  # riding out the outage
        status, doc = get_json(base + "/readyz")
        assert status == 503 and doc["notify"]["status"] == "outbox unavailable", doc
        assert get(base + "/healthz")[0] == 503
        notify.ok()
        assert get(base + "/readyz")[0] == 200
        clock[0] += 121  # no turn of the notify loop for longer than its stale bound: stuck
        status, doc = get_json(base + "/livez")
        assert status == 503 and doc["notify"]["status"] == "not live" and doc["notify"]["last_cycle_age_s"] == 121


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from listener.cli import JsonFormatter

    record = logging.LogRecord("crisiswatch.x", logging.WARNING, __file__, 1, "dead letter %s", ("a/0/1",), None)
    doc = orjson.loads(JsonFormatter().format(record))
    assert doc["level"] == "WARNING" and doc["message"] == "dead letter a/0/1" and doc["ts"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert orjson.loads(JsonFormatter().format(record))["error"] == "ValueError: boom"
