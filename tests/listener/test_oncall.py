"""The on-call engine on an injected clock: escalation, acknowledgement, silences, repeat, grouping, resolve,
actions (against a real local HTTP server) and response times."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from detectors import AlertEvent, Severity, Status
from detectors.events import iso
from listener.config import ConfigError
from listener.notifiers.action import build_actions
from listener.notify import silences_from_config
from listener.oncall import AlreadyResolved, OnCall, OnCallStore, UnknownCrisis
from listener.outbox import Dispatcher, DispatchSettings, Outbox
from listener.routing import Router, routes_from_config

from ..http_receiver import HttpReceiver

T0 = 1_795_000_000.0
CRISIS = "acme:20261124T1000Z"
RECEIVERS = ["social", "oncall", "leaders", "general"]
ROUTES = [
    {"name": "acme", "brands": ["acme"], "receivers": ["social"], "start_level": {"critical": 2},
     "repeat_interval_minutes": 60, "group_interval_minutes": 5, "continue": True,
     "escalation": [{"after_minutes": 15, "receivers": ["oncall"]},
                    {"after_minutes": 30, "receivers": ["leaders"]}]},
    {"name": "catch-all", "receivers": ["general"], "repeat_interval_minutes": 0},
]


class Recorder:
    """A receiver that keeps what it got (the payload as sent, on-call view included)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[dict[str, Any]] = []

    def send(self, event: Mapping[str, Any]) -> None:
        self.got.append(dict(event))

    def kinds(self) -> list[str]:
        return [f"{e['notice']['kind']}:{e['status']}" for e in self.got]


def event(n: int, status: Status, severity: Severity = Severity.ERROR, brand: str = "acme",
          crisis: str = CRISIS) -> AlertEvent:
    return AlertEvent(id=f"{crisis}:{n}:{status.value}", crisis_id=crisis, brand=brand, status=status,
                      severity=severity, at=1_764_000_000 + 60 * n, started_at=1_764_000_000,
                      summary=f"{brand} transition {n}")


class Harness:
    def __init__(self, path: Path, routes: list[dict[str, Any]] = ROUTES, actions: dict[str, Any] | None = None,
                 now: list[float] | None = None) -> None:
        self.now = now or [T0]
        clock = lambda: self.now[0]  # noqa: E731
        self.outbox = Outbox(path / "outbox.db", clock=clock)
        self.store = OnCallStore(self.outbox, ack_target_minutes=15)
        self.receivers = {n: Recorder(n) for n in RECEIVERS}
        self.engine = OnCall(self.store, Router(routes_from_config(routes, RECEIVERS), RECEIVERS),
                             list((actions or {}).values()), clock)
        self.dispatcher = Dispatcher(self.outbox, {**self.receivers, **(actions or {})},
                                     DispatchSettings(rate_per_minute=6000), clock=clock, decorate=self.store.view)

    def handle(self, *events: AlertEvent) -> None:
        """Take events, then a few (fake) seconds of ticking and dispatching (the rate limit spaces sends)."""
        self.engine.handle(events)
        for _ in range(5):
            self.engine.tick()
            self.dispatcher.run_once()
            self.now[0] += 1

    def advance(self, minutes: float) -> None:
        """Tick and dispatch once a (fake) minute."""
        for _ in range(int(minutes)):
            self.now[0] += 60
            self.engine.tick()
            self.dispatcher.run_once()

    def kinds(self, name: str) -> list[str]:
        return self.receivers[name].kinds()


@pytest.fixture()
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_an_unacknowledged_crisis_escalates_level_by_level(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    assert h.kinds("social") == ["transition:triggered"] and h.kinds("general") == ["transition:triggered"]
    h.advance(14)
    assert h.kinds("oncall") == []
    h.advance(1)  # 15 minutes: level 2
    assert h.kinds("oncall") == ["escalation:triggered"]
    got = h.receivers["oncall"].got[0]
    assert got["notice"]["level"] == 2 and "Not acknowledged within 15 min" in got["notice"]["text"]
    assert got["oncall"]["ack_due"] == iso(T0 + 15 * 60) and got["oncall"]["ack_command"].endswith("--by NAME")
    h.advance(29)
    assert h.kinds("leaders") == []
    h.advance(1)  # 30 more minutes: level 3
    assert h.kinds("leaders") == ["escalation:triggered"]
    assert h.kinds("social") == ["transition:triggered"]  # earlier levels are not re-paged by the escalation


def test_acknowledgement_stops_escalation_tells_everyone_and_is_timed(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    h.advance(10)
    c = h.store.acknowledge(CRISIS, "Ana", "drafting a holding statement")
    assert (c["acked_by"], c["ack_within_target"]) == ("Ana", True) and c["ack_min"] == pytest.approx(10, abs=0.2)
    h.advance(1)
    assert h.kinds("social") == ["transition:triggered", "acknowledged:triggered"]
    assert "Acknowledged by Ana after 10 min" in h.receivers["social"].got[1]["notice"]["text"]
    h.advance(120)
    assert h.kinds("oncall") == [] and h.kinds("leaders") == []  # no escalation after the acknowledgement
    assert h.store.acknowledge(CRISIS, "Bob")["acked_by"] == "Ana"  # the first acknowledgement counts
    h.handle(event(1, Status.UPDATED))
    assert h.receivers["social"].got[-1]["oncall"]["acknowledged_by"] == "Ana"


def test_acknowledging_an_unknown_crisis_names_the_open_ones(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    with pytest.raises(UnknownCrisis, match=f"open crises: {CRISIS}"):
        h.store.acknowledge("acme:nope", "Ana")
    with pytest.raises(ValueError, match="--by"):
        h.store.acknowledge(CRISIS, " ")


def test_acknowledging_a_resolved_crisis_is_refused_and_says_when_it_ended(h: Harness) -> None:
    """A crisis that ended before anyone took it was not answered: an acknowledgement now would be counted
    as a response (within the target, if quick)."""
    h.handle(event(0, Status.TRIGGERED))
    h.advance(5)
    h.handle(event(30, Status.RESOLVED))
    with pytest.raises(AlreadyResolved, match=f"{CRISIS} was resolved at {iso(event(30, Status.RESOLVED).at)}"):
        h.store.acknowledge(CRISIS, "Ana")
    (c,) = h.store.crises()
    assert c["acked_by"] is None and h.store.summary([c])["acknowledged"] == 0
    taken = "acme:20261124T1200Z"
    h.handle(event(0, Status.TRIGGERED, crisis=taken))
    h.store.acknowledge(taken, "Ana")
    h.handle(event(1, Status.RESOLVED, crisis=taken))
    assert h.store.acknowledge(taken, "Bob")["acked_by"] == "Ana"  # taken before it ended: unchanged, as before


def test_a_late_acknowledgement_never_counts_within_the_target(h: Harness) -> None:
    """The target is compared with the exact time, not the rounded minutes shown (15.03 min is late), and an
    acknowledgement stored after the crisis ended (older versions accepted one) is no response."""
    h.handle(event(0, Status.TRIGGERED))
    h.now[0] = T0 + 15 * 60 + 2
    c = h.store.acknowledge(CRISIS, "Ana")
    assert (c["ack_min"], c["ack_within_target"]) == (15.0, False)
    over = "acme:20261124T1200Z"
    h.handle(event(0, Status.TRIGGERED, crisis=over), event(1, Status.RESOLVED, crisis=over))
    with closing(sqlite3.connect(h.outbox.path)) as db, db:
        db.execute("UPDATE crises SET acked_at = resolved_seen + 60, acked_by = 'Bob' WHERE crisis_id = ?", (over,))
    crises = h.store.crises()
    assert [(c["acked_by"], c["ack_within_target"]) for c in crises] == [("Ana", False), ("Bob", False)]
    assert h.store.summary(crises)["ack_within_target"] == 0


def test_a_critical_crisis_starts_higher_and_a_severity_rise_escalates_at_once(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED, Severity.CRITICAL))
    assert h.kinds("social") == ["transition:triggered"] and h.kinds("oncall") == ["transition:triggered"]
    other = "acme:20261124T1200Z"
    h.handle(event(0, Status.TRIGGERED, Severity.ERROR, crisis=other))
    h.handle(event(1, Status.ESCALATED, Severity.CRITICAL, crisis=other))
    assert [e["id"] for e in h.receivers["oncall"].got][-1] == f"{other}:1:escalated"


def test_updates_are_grouped_and_only_the_newest_goes_out(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    h.advance(1)
    h.handle(event(1, Status.UPDATED))
    h.advance(1)
    h.handle(event(2, Status.UPDATED))
    assert h.kinds("social") == ["transition:triggered"]  # held: within 5 minutes of the last notice
    h.advance(3)
    assert [e["id"] for e in h.receivers["social"].got] == [f"{CRISIS}:0:triggered", f"{CRISIS}:2:updated"]


def test_repeat_while_it_lasts_then_resolve_to_everyone_notified_and_silence_after(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    h.store.acknowledge(CRISIS, "Ana")
    h.advance(1)
    h.advance(60)
    assert h.kinds("social") == ["transition:triggered", "acknowledged:triggered", "repeat:triggered"]
    assert h.kinds("general") == ["transition:triggered", "acknowledged:triggered"]  # repeat off on catch-all
    h.handle(event(1, Status.RESOLVED))
    assert h.kinds("social")[-1] == "transition:resolved" and h.kinds("general")[-1] == "transition:resolved"
    assert h.kinds("oncall") == []  # never notified, so not told of the resolution either
    before = len(h.receivers["social"].got)
    h.advance(300)
    assert len(h.receivers["social"].got) == before


def test_a_silence_mutes_keeps_the_record_and_tells_them_when_it_ends(h: Harness) -> None:
    h.store.add_silence("acme", "", T0, T0 + 30 * 60, "Ana", "planned product launch", "cli")
    h.handle(event(0, Status.TRIGGERED))
    h.advance(20)
    assert all(not r.got for r in h.receivers.values())  # muted, no escalation either
    assert {r["receiver"] for r in h.outbox.rows("silenced")} == {"social", "general"}
    h.advance(10)  # the silence ends with the crisis still on
    assert h.kinds("social") == ["repeat:triggered"] and h.kinds("general") == ["repeat:triggered"]
    assert "silence on this crisis ended" in h.receivers["social"].got[0]["notice"]["text"]
    h.advance(14)
    assert h.kinds("oncall") == []
    h.advance(1)  # the escalation clock restarted when the silence ended
    assert h.kinds("oncall") == ["escalation:triggered"]


def test_a_backfill_under_a_silence_pages_only_the_crisis_still_on_when_it_ends(h: Harness) -> None:
    """The README's backfill procedure: replaying a brand's history raises alert events for its past crises;
    under a silence of the brand they are kept as ``silenced`` and never sent, and when the silence ends
    only a crisis the history left open is told."""
    h.store.add_silence("acme", "", T0, T0 + 30 * 60, "Ana", "backfill of acme's history", "cli")
    past, open_ = "acme:20261101T0900Z", "acme:20261123T2300Z"
    h.handle(event(0, Status.TRIGGERED, crisis=past), event(1, Status.ESCALATED, Severity.CRITICAL, crisis=past),
             event(2, Status.RESOLVED, crisis=past), event(0, Status.TRIGGERED, crisis=open_))
    h.advance(29)
    assert all(not r.got for r in h.receivers.values())
    assert {r["crisis_id"] for r in h.outbox.rows("silenced")} == {past, open_}
    h.advance(1)
    assert {e["crisis_id"] for r in h.receivers.values() for e in r.got} == {open_}
    assert h.kinds("social") == ["repeat:triggered"]


def test_a_silence_of_one_route_leaves_the_others(h: Harness) -> None:
    sid = h.store.add_silence("", "catch-all", T0, T0 + 3600, "Ana", "general channel is noisy today", "http")
    h.handle(event(0, Status.TRIGGERED))
    assert h.kinds("social") == ["transition:triggered"] and h.kinds("general") == []
    assert h.store.expire_silence(sid) and not h.store.expire_silence(sid)
    h.advance(1)
    assert h.kinds("general") == ["repeat:triggered"]


def test_silences_need_who_why_and_a_target(h: Harness) -> None:
    with pytest.raises(ValueError, match="who"):
        h.store.add_silence("acme", "", T0, T0 + 60, "", "x", "cli")
    with pytest.raises(ValueError, match="brand or a route"):
        h.store.add_silence("", "", T0, T0 + 60, "Ana", "x", "cli")
    with pytest.raises(ConfigError, match="silences\\[0\\].comment is required"):
        silences_from_config([{"brand": "acme", "starts": "2026-11-24T09:00:00Z", "ends": "2026-11-24T10:00:00Z",
                               "created_by": "Ana"}])
    (s,) = silences_from_config([{"brand": "acme", "starts": "2026-11-24T09:00:00Z", "ends": "2026-11-24T10:00:00Z",
                                  "created_by": "Ana", "comment": "launch"}])
    assert s["ends"] - s["starts"] == 3600


def test_a_silence_must_name_a_brand_or_route_that_exists(h: Harness) -> None:
    """A typo would mute nothing while everyone believes the brand is muted.  Known: the brands and routes the
    configuration names (here the router's) and the brands with a crisis on record."""
    with pytest.raises(ValueError, match="unknown brand 'acmee', did you mean 'acme'"):
        h.store.add_silence("acmee", "", T0, T0 + 60, "Ana", "launch", "cli")
    with pytest.raises(ValueError, match="unknown route 'catch-al', did you mean 'catch-all'.*acme, catch-all"):
        h.store.add_silence("", "catch-al", T0, T0 + 60, "Ana", "noisy", "http")
    with pytest.raises(ValueError, match="unknown brand 'globex'. Known brands .*: acme$"):
        h.store.add_silence("globex", "", T0, T0 + 60, "Ana", "launch", "cli")
    assert h.store.silences() == []
    h.handle(event(0, Status.TRIGGERED, brand="globex", crisis="globex:20261124T1000Z"))
    assert h.store.add_silence("globex", "catch-all", h.now[0], h.now[0] + 60, "Ana", "launch", "cli")


def test_a_notice_is_told_once_to_the_first_level_and_is_not_a_crisis(h: Harness) -> None:
    notice = event(0, Status.NOTICE, Severity.INFO, crisis="acme:volume:20261124T1000Z")
    h.handle(notice)
    assert h.kinds("social") == ["notice:notice"] and h.kinds("general") == ["notice:notice"]
    assert "oncall" not in h.receivers["social"].got[0]  # nothing to acknowledge
    h.advance(120)
    assert h.kinds("oncall") == [] and h.kinds("leaders") == []  # no escalation
    assert h.kinds("social") == ["notice:notice"]  # no repeat
    assert h.store.crises() == []  # not a crisis: not listed, not in the response times
    h.handle(notice)  # read again after a crash
    assert h.kinds("social") == ["notice:notice"]
    h.store.add_silence("acme", "", h.now[0], h.now[0] + 3600, "Ana", "launch day", "cli")
    h.handle(event(0, Status.NOTICE, Severity.INFO, crisis="acme:volume:20261124T1500Z"))
    assert h.kinds("social") == ["notice:notice"]  # muted
    assert {r["receiver"] for r in h.outbox.rows("silenced")} == {"social", "general"}


def test_events_read_again_after_a_crash_change_nothing(h: Harness) -> None:
    events = [event(0, Status.TRIGGERED), event(1, Status.ESCALATED, Severity.CRITICAL)]
    h.handle(*events)
    rows = len(h.outbox.rows())
    h.handle(*events)
    assert len(h.outbox.rows()) == rows and h.engine.replays == 2
    assert h.kinds("social") == ["transition:triggered", "transition:escalated"]


def test_escalation_survives_a_restart(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.handle(event(0, Status.TRIGGERED))
    first.advance(10)
    first.outbox.close()
    again = Harness(tmp_path, now=[first.now[0]])
    again.advance(5)
    assert again.kinds("oncall") == ["escalation:triggered"]
    assert again.kinds("social") == []  # the trigger was delivered before the restart


def test_response_times_are_reported(h: Harness) -> None:
    h.handle(event(0, Status.TRIGGERED))
    h.advance(20)
    h.store.acknowledge(CRISIS, "Ana")
    h.handle(event(90, Status.RESOLVED))
    (c,) = h.store.crises()
    assert (c["status"], c["ack_within_target"], c["duration_min"]) == ("resolved", False, 90.0)
    assert c["ack_min"] == pytest.approx(20, abs=0.2) and c["detected_after_min"] == 0
    s = h.store.summary([c])
    assert (s["crises"], s["acknowledged"], s["ack_within_target"], s["median_ack_min"]) == (1, 1, 0, c["ack_min"])


# --- actions, against a real local HTTP server ------------------------------------------------------------

def pause_action(base: str) -> dict[str, Any]:
    return build_actions(({
        "name": "pause-posts", "brands": ["acme"], "url": base + "/brands/$brand/pause",
        "body": '{"reason": "crisis $crisis_id", "summary": "$summary"}', "token_env": "SCHED_TOKEN",
        "undo_url": base + "/brands/$brand/resume",
    },), env={"SCHED_TOKEN": "t" * 24})


def test_scheduled_posts_are_paused_on_trigger_and_resumed_on_resolve(tmp_path: Path,
                                                                     receiver: HttpReceiver) -> None:
    base, s = receiver.url, receiver
    h = Harness(tmp_path, actions=pause_action(base))
    h.handle(event(0, Status.TRIGGERED))
    assert [(c.path, c.headers["authorization"]) for c in s.requests] == [("/brands/acme/pause", "Bearer " + "t" * 24)]
    assert s.requests[0].body == f'{{"reason": "crisis {CRISIS}", "summary": "acme transition 0"}}'.encode()
    (shown,) = h.receivers["social"].got[0]["actions"]  # the alert carries the outcome
    assert (shown["name"], shown["step"], shown["outcome"]) == ("pause-posts", "do", "done")
    h.handle(event(1, Status.RESOLVED))
    assert [c.path for c in s.requests] == ["/brands/acme/pause", "/brands/acme/resume"]
    assert [a["outcome"] for a in h.receivers["social"].got[-1]["actions"]] == ["done", "done"]


def test_a_failing_action_is_shown_retried_and_never_blocks_the_alert(tmp_path: Path,
                                                                     receiver: HttpReceiver) -> None:
    base, s = receiver.url, receiver
    s.script = [503]
    h = Harness(tmp_path, actions=pause_action(base))
    h.handle(event(0, Status.TRIGGERED))
    assert h.kinds("social") == ["transition:triggered"]
    (shown,) = h.receivers["social"].got[0]["actions"]
    assert shown["outcome"] == "pending" and "HTTP 503" in shown["error"] and "t" * 24 not in shown["error"]
    h.advance(5)
    assert len(s.requests) == 2 and h.outbox.rows(crisis_id=CRISIS, status="delivered")


def test_an_action_for_another_brand_does_nothing(tmp_path: Path, receiver: HttpReceiver) -> None:
    base, s = receiver.url, receiver
    h = Harness(tmp_path, actions=pause_action(base))
    h.handle(event(0, Status.TRIGGERED, brand="globex", crisis="globex:20261124T1000Z"),
             event(1, Status.RESOLVED, brand="globex", crisis="globex:20261124T1000Z"))
    assert s.requests == []


@pytest.mark.parametrize("table, words", [
    ({"url": "https://s.example.com/$brand"}, "actions[0].name is required"),
    ({"name": "p"}, "actions[0].url (or url_env) is required"),
    ({"name": "p", "url": "https://s.example.com/$nope"}, "uses $nope"),
    ({"name": "p", "url": "ftp://s.example.com/x"}, "http:// or https://"),
    ({"name": "p", "url": "https://s.example.com/x", "method": "FETCH"}, "actions[0].method must be one of"),
    ({"name": "p", "url": "https://s.example.com/x", "token_env": "MISSING"}, "MISSING is not set"),
    ({"name": "p", "url": "https://s.example.com/x", "url_env": "U"}, "set url or url_env, not both"),
    ({"name": "p", "url": "https://s.example.com/x", "colour": "red"}, "unknown key actions[0].colour"),
])
def test_bad_actions_name_the_key(table: dict[str, Any], words: str) -> None:
    from listener.notifiers.base import NotifierConfigError

    with pytest.raises(NotifierConfigError) as info:
        build_actions((table,), env={"U": "https://s.example.com/secret-path-123"})
    assert words in str(info.value)
