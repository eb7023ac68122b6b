"""The outbox and dispatcher delivering to a real local HTTP receiver (the webhook notifier), on an injected clock."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.simulator import demo_simulation
from listener.notifiers.registry import build_notifiers
from listener.offline import run_items
from listener.outbox import DispatchSettings, Dispatcher, Outbox
from listener.pipeline import PipelineSettings

from ..http_receiver import HttpReceiver
from ..waiting import wait_until
from .delivery_helpers import notices

EVENTS = run_items(demo_simulation().items(), PipelineSettings()).events
SECRET = "s" * 32


def alert_ids(r: HttpReceiver) -> list[str]:
    return [req.headers["x-crisiswatch-alert-id"] for req in r.accepted]


def setup(tmp_path: Path, url: str, now: list[float]) -> tuple[Outbox, Dispatcher]:
    notifiers = build_notifiers(({"type": "webhook", "name": "hook", "url_env": "U", "secret_env": "S"},),
                                env={"U": url, "S": SECRET})
    box = Outbox(tmp_path / "outbox.db", clock=lambda: now[0])
    return box, Dispatcher(box, notifiers, DispatchSettings(rate_per_minute=6000), clock=lambda: now[0])


def drive(dispatcher: Dispatcher, now: list[float], minutes: int) -> None:
    """Run the dispatcher once a second of (injected) time, for a while."""
    for _ in range(minutes * 60):
        dispatcher.run_once()
        now[0] += 1.0


def test_a_receiver_down_for_minutes_gets_every_alert_exactly_once(tmp_path: Path,
                                                                  receiver: HttpReceiver) -> None:
    url, r = receiver.url + "/hook", receiver
    r.script = [500] * 8 + [503] * 2  # down for a while (about 40 minutes of backoff)
    now = [1_000.0]
    box, dispatcher = setup(tmp_path, url, now)
    box.enqueue(notices(EVENTS, ["hook"]))
    box.enqueue(notices(EVENTS, ["hook"]))  # the same batch again, as after a crash before the Kafka commit
    drive(dispatcher, now, minutes=120)
    assert sorted(alert_ids(r)) == sorted(e.id for e in EVENTS)
    assert box.counts() == {"delivered": len(EVENTS)}
    assert len(r.requests) == len(EVENTS) + 10 and dispatcher.failed == 10


def test_a_crash_between_write_and_send_is_recovered_from_the_outbox(tmp_path: Path,
                                                                    receiver: HttpReceiver) -> None:
    url, r = receiver.url + "/hook", receiver
    now = [1_000.0]
    box, _ = setup(tmp_path, url, now)
    box.enqueue(notices(EVENTS[:2], ["hook"]))
    box.close()  # crash: nothing was sent
    assert alert_ids(r) == []
    box, dispatcher = setup(tmp_path, url, now)  # restart
    drive(dispatcher, now, minutes=1)
    assert alert_ids(r) == [e.id for e in EVENTS[:2]]


def test_a_refusal_is_kept_as_dead_not_retried_and_not_dropped(tmp_path: Path,
                                                              receiver: HttpReceiver) -> None:
    url, r = receiver.url + "/hook", receiver
    r.script = [400]
    now = [1_000.0]
    box, dispatcher = setup(tmp_path, url, now)
    box.enqueue(notices(EVENTS[:2], ["hook"]))
    drive(dispatcher, now, minutes=5)
    assert len(r.requests) == 2 and alert_ids(r) == [EVENTS[1].id]
    (dead,) = box.rows("dead")
    assert dead["alert_id"] == EVENTS[0].id and "400" in dead["last_error"] and SECRET not in dead["last_error"]


def test_backoff_grows_and_gives_up_after_the_configured_age(tmp_path: Path, receiver: HttpReceiver) -> None:
    url, r = receiver.url + "/hook", receiver
    r.script = [503] * 1000
    now = [1_000.0]
    box, dispatcher = setup(tmp_path, url, now)
    dispatcher.settings = DispatchSettings(rate_per_minute=6000, give_up_after_s=3600, max_backoff_s=600)
    box.enqueue(notices(EVENTS[:1], ["hook"]))
    drive(dispatcher, now, minutes=120)
    # exponential backoff: a handful of attempts in an hour, not one a second; then dead
    assert 5 <= len(r.requests) <= 40
    assert box.counts() == {"dead": 1}


def test_a_crisis_reaches_a_receiver_in_order_even_when_the_first_transition_is_retried(
        tmp_path: Path, receiver: HttpReceiver) -> None:
    url, r = receiver.url + "/hook", receiver
    r.script = [503]  # the triggered event fails once
    now = [1_000.0]
    box, dispatcher = setup(tmp_path, url, now)
    box.enqueue(notices(EVENTS, ["hook"]))
    drive(dispatcher, now, minutes=30)
    assert alert_ids(r) == [e.id for e in EVENTS]  # triggered ... resolved, never resolved before triggered
    statuses = [e.status.value for e in EVENTS]
    assert statuses[0] == "triggered" and statuses[-1] == "resolved"


SLOW_TABLES = {
    "webhook": ({"type": "webhook", "name": "slow", "url_env": "U", "secret_env": "S", "timeout_s": 0.5},
                {"S": SECRET}),
    "slack": ({"type": "slack", "name": "slow", "webhook_url_env": "U", "timeout_s": 0.5}, {}),
    "pagerduty": ({"type": "pagerduty", "name": "slow", "routing_key_env": "K", "url": "", "timeout_s": 0.5},
                  {"K": "R" * 32}),
}


@pytest.mark.parametrize("kind", sorted(SLOW_TABLES))
def test_a_receiver_slower_than_the_timeout_is_retried_with_a_longer_one_and_gets_at_most_one_duplicate(
        tmp_path: Path, receiver: HttpReceiver, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each request takes the receiver 0.65 s; the configured timeout is 0.5 s. The first attempt of a notice times
    out (the receiver still processes it); the retry waits twice as long and succeeds. Before, every retry timed out
    after the same 0.5 s while the receiver went on processing them: duplicates and no end."""
    table, env = SLOW_TABLES[kind]
    if kind == "pagerduty":
        table = {**table, "url": receiver.url + "/v2/enqueue"}
    receiver.delay_s = 0.65
    now = [1_000.0]
    notifiers = build_notifiers((table,), env={"U": receiver.url + "/hook", **env})
    box = Outbox(tmp_path / "outbox.db", clock=lambda: now[0])
    dispatcher = Dispatcher(box, notifiers, DispatchSettings(rate_per_minute=6000, backoff_s=1.0),
                            clock=lambda: now[0])
    events = [e for e in EVENTS if e.status.value in ("triggered", "resolved")]
    box.enqueue(notices(events, ["slow"]))
    caplog.set_level(logging.WARNING, logger="listener.outbox")
    for _ in range(4 * len(events)):  # the retry is due at the next round (backoff at most 1 s)
        dispatcher.run_once()
        now[0] += 1.0
        if box.counts() == {"delivered": len(events)}:
            break
    assert box.counts() == {"delivered": len(events)}, box.rows()
    # every notice: the timed-out first attempt, then the second that waited long enough
    assert [row["attempts"] for row in box.rows()] == [2] * len(events)
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == len(events) and all("no answer within 0.5 s" in m for m in failures), failures
    assert receiver.wait_for(lambda r: len(r.requests) == 2 * len(events), 10), len(receiver.requests)
    # at most one duplicate per notice, and each request names its notice the same way on every attempt
    if kind == "webhook":
        keys = [req.headers.get("idempotency-key") for req in receiver.requests]
        assert keys == [req.headers["x-crisiswatch-alert-id"] for req in receiver.requests]
        assert sorted(keys) == sorted(e.id for e in events for _ in range(2))  # type: ignore[type-var]
    elif kind == "pagerduty":
        assert {req.json()["dedup_key"] for req in receiver.requests} == {events[0].crisis_id}
        assert sorted(req.json()["event_action"] for req in receiver.requests) == [
            "resolve", "resolve", "trigger", "trigger"]
    else:  # Slack has no idempotency key: the receiver shows the duplicate
        assert len(receiver.requests) == 2 * len(events)


def test_the_timeout_grows_with_the_attempt_and_is_capped() -> None:
    from listener.notifiers.base import attempt_timeout, delivery_attempt

    assert attempt_timeout(10.0) == 10.0  # outside the dispatcher: the configured timeout
    with delivery_attempt(1):
        assert attempt_timeout(10.0) == 10.0
    with delivery_attempt(3):
        assert attempt_timeout(10.0) == 30.0
        assert attempt_timeout(0.5) == 1.5
    with delivery_attempt(50):
        assert attempt_timeout(10.0) == 60.0
        assert attempt_timeout(120.0) == 120.0  # a configured timeout above the cap is never shortened
    assert attempt_timeout(10.0) == 10.0


@contextmanager
def idempotent_receiver(delay_s: float) -> Iterator[tuple[str, Counter[str], list[int]]]:
    """A slow webhook receiver that honours ``Idempotency-Key`` as such receivers do: the first request with a key
    is processed (taking ``delay_s``); one that comes while it is in progress gets 409, one after it the stored
    answer. Yields its URL, how many times each key was processed, and every status it answered."""
    processed: Counter[str] = Counter()
    statuses: list[int] = []
    done: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = self.headers.get("Idempotency-Key") or ""
            with lock:
                fresh = key not in processed
                if fresh:
                    processed[key] += 1
            if fresh:
                time.sleep(delay_s)  # the work
                with lock:
                    done.add(key)
                status = 200
            else:
                with lock:
                    status = 200 if key in done else 409
            statuses.append(status)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", processed, statuses
    finally:
        server.shutdown()
        server.server_close()


def test_a_slow_receiver_that_honours_the_idempotency_key_processes_each_notice_once(tmp_path: Path) -> None:
    """Our retry reaches it while it still works on the first attempt: 409, tried again later, then the stored
    answer. Before, the webhook sent no Idempotency-Key, and a 409 was a refusal (the delivery marked dead).
    On the wall clock: the retries must meet the receiver still at work, then done."""
    events = [e for e in EVENTS if e.status.value in ("triggered", "resolved")]
    with idempotent_receiver(delay_s=2.5) as (url, processed, statuses):  # the first retry comes after ~1.5 s
        notifiers = build_notifiers(({"type": "webhook", "name": "hook", "url_env": "U", "secret_env": "S",
                                      "timeout_s": 0.5},), env={"U": url, "S": SECRET})
        box = Outbox(tmp_path / "outbox.db")
        dispatcher = Dispatcher(box, notifiers, DispatchSettings(rate_per_minute=6000, backoff_s=0.5),
                                rng=random.Random(7))
        box.enqueue(notices(events, ["hook"]))

        def delivered() -> bool:
            dispatcher.run_once()
            return box.counts() == {"delivered": len(events)}

        assert wait_until(delivered, 60, interval_s=0.05), (box.rows(), statuses)
        assert processed == {e.id: 1 for e in events}
        assert 409 in statuses
