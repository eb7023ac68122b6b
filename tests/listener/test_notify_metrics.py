"""The notify role's metrics and probes: deliveries per receiver, the outbox's backlog, escalations and
acknowledgements on ``/metrics``; ``/livez`` and ``/readyz`` on its own server and on the on-call API."""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from detectors import Status
from listener.api import serving as serving_api
from listener.config import Config, ConfigError, load
from listener import metrics
from listener.notifiers.base import NotifierError
from listener.notify import Notify, OnCallStack, OutboxHealth
from listener.outbox import DispatchSettings

from ..monitoring_exposition import NoKafka
from .test_oncall import CRISIS, T0, Harness, event

TOKEN = "k" * 32


class Failing:
    """A receiver that is down (retryable) or refuses for good."""

    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def send(self, event: Mapping[str, Any]) -> None:
        raise NotifierError("503 from the receiver" if self.retryable else "400 bad payload",
                            retryable=self.retryable)


def worked(tmp_path: Path) -> tuple[Harness, Notify]:
    """A crisis nobody acknowledges for 15 minutes: social gets every notice, general is down (its notices pile
    up), the escalation to oncall is refused for good (dead), then Ana acknowledges it — late."""
    h = Harness(tmp_path)
    h.dispatcher.notifiers["general"] = Failing(retryable=True)
    h.dispatcher.notifiers["oncall"] = Failing(retryable=False)
    config = Config(outbox=DispatchSettings(path=str(h.outbox.path)))
    clock = [0.0]
    notify = Notify(config, OnCallStack(h.store, h.engine, h.dispatcher), producer=None,  # type: ignore[arg-type]
                    consumer_factory=NoKafka,
                    health=OutboxHealth(str(h.outbox.path), 300, clock=lambda: clock[0]))
    h.handle(event(0, Status.TRIGGERED))
    h.advance(15)  # level 2: oncall
    h.store.acknowledge(CRISIS, "Ana")  # 15.1 min after the first notice: over the 15 min target
    h.advance(1)  # the acknowledgement is announced
    return h, notify


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_notify_metrics_count_deliveries_backlog_escalations_and_acknowledgements(tmp_path: Path) -> None:
    h, notify = worked(tmp_path)
    notify.health.beat()
    with metrics.serving_notify(notify.health, ("127.0.0.1", 0)) as (host, port):
        status, body = scrape(f"http://{host}:{port}/metrics")  # no token: read-only, like the listener's
    assert status == 200
    got = samples(body.decode())

    def per_receiver(name: str) -> dict[str, float]:
        return {dict(labels)["receiver"]: v for (n, labels), v in got.items() if n == name}

    assert per_receiver("crisiswatch_deliveries_sent_total") == {"social": 2, "general": 0, "oncall": 0,
                                                                 "leaders": 0}
    assert per_receiver("crisiswatch_deliveries_dead_total") == {"social": 0, "general": 0, "oncall": 2,
                                                                 "leaders": 0}
    general_attempts = sum(r["attempts"] for r in h.outbox.rows() if r["receiver"] == "general")
    assert general_attempts >= 2
    assert per_receiver("crisiswatch_delivery_failures_total") == {"social": 0, "general": general_attempts,
                                                                   "oncall": 2, "leaders": 0}
    # general's triggered notice (written at T0) and its acknowledgement notice wait
    assert per_receiver("crisiswatch_outbox_pending_deliveries") == {"social": 0, "general": 2, "oncall": 0,
                                                                     "leaders": 0}
    age = per_receiver("crisiswatch_outbox_oldest_pending_age_seconds")
    assert age == {"social": 0, "general": h.now[0] - T0, "oncall": 0, "leaders": 0}
    assert {dict(labels)["route"]: v for (n, labels), v in got.items()
            if n == "crisiswatch_escalations_total"} == {"acme": 1, "catch-all": 0}
    assert {dict(labels)["within_target"]: v for (n, labels), v in got.items()
            if n == "crisiswatch_acknowledgements_total"} == {"true": 0, "false": 1}
    assert got[("crisiswatch_outbox_unavailable", ())] == 0
    assert got[("crisiswatch_outbox_write_errors_total", ())] == 0
    assert got[("crisiswatch_notify_alert_events_total", ())] == 0
    assert got[("crisiswatch_notify_broker_errors_total", ())] == 0
    assert ("crisiswatch_notify_last_cycle_timestamp_seconds", ()) in got
    h.outbox.close()


def test_an_escalation_is_counted_once_even_when_the_outbox_fails_mid_tick(tmp_path: Path) -> None:
    """Counted after the transaction commits: a tick rolled back (locked, disk full) and done again later
    counts one escalation, not two."""
    h, notify = worked(tmp_path)
    h.handle(event(0, Status.TRIGGERED, crisis="acme:other"))
    real = h.outbox.transaction

    @contextmanager
    def lost_at_commit() -> Iterator[sqlite3.Connection]:
        """The tick's work is done in the transaction, then the commit fails and SQLite rolls it back."""
        with h.outbox._lock:
            h.outbox._db.execute("BEGIN IMMEDIATE")
            try:
                yield h.outbox._db
            finally:
                h.outbox._db.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    h.now[0] += 15 * 60
    h.outbox.transaction = lost_at_commit  # type: ignore[method-assign]
    with pytest.raises(sqlite3.OperationalError):
        h.engine.tick()
    h.outbox.transaction = real  # type: ignore[method-assign]
    assert h.engine.escalations == {"acme": 1}
    h.engine.tick()  # done again: the escalation happens now, once
    assert h.engine.escalations == {"acme": 2}
    h.outbox.close()


def test_the_notify_server_answers_probes_without_a_token(tmp_path: Path) -> None:
    """``[oncall] metrics_listen``: ``/metrics``, ``/livez``, ``/readyz`` and ``/healthz`` without the API's
    token (that token acknowledges and silences: Prometheus and the kubelet must not hold it)."""
    clock = [1000.0]
    health = OutboxHealth(str(tmp_path / "outbox.db"), max_unavailable_s=300, clock=lambda: clock[0])
    with metrics.serving_notify(health, ("127.0.0.1", 0)) as (host, port):
        base = f"http://{host}:{port}"
        assert scrape(base + "/livez")[0] == 503  # the loop has not turned yet
        health.beat()
        assert scrape(base + "/livez")[0] == 200 and scrape(base + "/readyz")[0] == 200
        assert orjson.loads(scrape(base + "/healthz")[1]) == {"status": "ok"}
        health.failed(sqlite3.OperationalError("database is locked"))
        clock[0] += 60
        health.beat()
        assert scrape(base + "/livez")[0] == 200  # within max_unavailable_s: ridden out, not restarted
        status, body = scrape(base + "/readyz")
        assert status == 503 and orjson.loads(body)["status"] == "outbox unavailable"
        assert scrape(base + "/healthz")[0] == 503
        clock[0] += 300  # past max_unavailable_s (the loop exits; should it not, restart it)
        health.beat()
        status, body = scrape(base + "/livez")
        assert status == 503 and "max_unavailable_s" in orjson.loads(body)["reason"]
        status, body = scrape(base + "/metrics")
        assert status == 200 and b"crisiswatch_outbox_unavailable 1.0" in body
        assert scrape(base + "/crises")[0] == 404  # the API's endpoints are not served here


def test_the_on_call_api_answers_livez_and_readyz_without_a_token(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    clock = [1000.0]
    health = OutboxHealth(str(h.outbox.path), max_unavailable_s=300, clock=lambda: clock[0])
    health.beat()
    with serving_api(h.store, "127.0.0.1:0", TOKEN, health.check, live=health.live,
                     ready=health.ready) as (host, port):
        base = f"http://{host}:{port}"
        assert scrape(base + "/livez")[0] == 200 and scrape(base + "/readyz")[0] == 200
        health.failed(sqlite3.OperationalError("database is locked"))
        assert scrape(base + "/livez")[0] == 200
        assert scrape(base + "/readyz")[0] == 503 and scrape(base + "/healthz")[0] == 503
        status, body = scrape(base + "/metrics")
        assert status == 401  # metrics are served on [oncall] metrics_listen, not behind the API's token
        assert scrape(base + "/metrics", TOKEN)[0] == 404
    with serving_api(h.store, "127.0.0.1:0", TOKEN) as (host, port):  # no notify loop behind it (tests, tools)
        assert scrape(f"http://{host}:{port}/livez")[0] == 200 and scrape(f"http://{host}:{port}/readyz")[0] == 200
    h.outbox.close()


@pytest.mark.parametrize(("value", "words"), [
    ("9109", "oncall.metrics_listen must be host:port"),
    ("127.0.0.1:99999", "oncall.metrics_listen must be host:port"),
    ("127.0.0.1:8787", "oncall.metrics_listen must differ from oncall.http_listen"),
])
def test_oncall_metrics_listen_is_checked(tmp_path: Path, value: str, words: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[oncall]\nhttp_listen = "127.0.0.1:8787"\nmetrics_listen = "{value}"\n')
    with pytest.raises(ConfigError, match=words):
        load(cfg, env={})


def test_oncall_metrics_listen_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[oncall]\nmetrics_listen = "0.0.0.0:9109"\n')
    assert load(cfg, env={}).oncall.metrics_listen == "0.0.0.0:9109"
    assert load(cfg, env={"CRISISWATCH__ONCALL__METRICS_LISTEN": "[::1]:9109"}).oncall.metrics_listen == "[::1]:9109"
