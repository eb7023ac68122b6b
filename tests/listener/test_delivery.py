"""The outbox and dispatcher delivering to a real local HTTP receiver (the webhook notifier), on an injected clock."""

from __future__ import annotations

from pathlib import Path


from connectors.simulator import demo_simulation
from listener.notifiers.registry import build_notifiers
from listener.offline import run_items
from listener.outbox import DispatchSettings, Dispatcher, Outbox
from listener.pipeline import PipelineSettings

from ..http_receiver import HttpReceiver
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
