from __future__ import annotations

from pathlib import Path

from connectors.simulator import demo_simulation
from listener.offline import run_items
from listener.outbox import Outbox
from listener.pipeline import PipelineSettings

from .delivery_helpers import notices

EVENTS = run_items(demo_simulation().items(), PipelineSettings()).events


def test_enqueue_is_idempotent_by_alert_id_and_receiver(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", clock=lambda: 100.0)
    assert box.enqueue(notices(EVENTS, ["slack", "pager"])) == 2 * len(EVENTS)
    assert box.enqueue(notices(EVENTS, ["slack", "pager"])) == 0  # a replayed batch adds nothing
    assert box.enqueue(notices(EVENTS[:1], ["mail"])) == 1
    assert box.counts() == {"pending": 2 * len(EVENTS) + 1}


def test_the_outbox_survives_a_restart(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", clock=lambda: 100.0)
    try:
        with box.transaction() as db:
            box.write(db, notices(EVENTS, ["slack"]))
            raise RuntimeError("crash inside the transaction")
    except RuntimeError:
        pass
    assert box.counts() == {}  # all or nothing
    box.enqueue(notices(EVENTS, ["slack"]))
    box.close()  # the process dies here, before anything was sent
    again = Outbox(tmp_path / "outbox.db", clock=lambda: 100.0)
    due = again.due()
    assert [d.alert_id for d in due] == [EVENTS[0].id]  # a crisis's later transitions wait for the first
    assert due[0].event == EVENTS[0].to_dict()
    again.mark_delivered(due[0])
    assert [d.alert_id for d in again.due()] == [EVENTS[1].id]


def test_delivered_and_dead_are_not_due_and_retries_wait(tmp_path: Path) -> None:
    now = [100.0]
    box = Outbox(tmp_path / "outbox.db", clock=lambda: now[0])
    box.enqueue(notices(EVENTS[:1], ["r1", "r2", "r3"]))
    first, second, third = box.due()
    box.mark_delivered(first)
    box.mark_dead(second, "400 invalid_payload")
    box.mark_retry(third, "503", at=160.0)
    assert box.due() == []
    now[0] = 160.0
    assert [(d.alert_id, d.receiver) for d in box.due()] == [(third.alert_id, "r3")] and box.due()[0].attempts == 1
    assert box.counts() == {"delivered": 1, "dead": 1, "pending": 1}
    assert box.rows("dead")[0]["last_error"] == "400 invalid_payload"
