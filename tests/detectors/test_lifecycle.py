from __future__ import annotations

from detectors.events import Status
from detectors.lifecycle import Lifecycle, Phase


def run(lc: Lifecycle, steps: list[tuple[bool, bool, int]]) -> list[tuple[int, str, int, int]]:
    out = []
    for minute, (hot, cool, sev) in enumerate(steps):
        for t in lc.step(minute, hot, cool, sev):
            out.append((minute, t.status.value + (f"/{t.note}" if t.note else ""), t.seq, t.started_at))
    return out


HOT, COOL, MID = (True, False, 1), (False, True, 1), (False, False, 1)


def test_needs_sustained_hot_minutes_to_trigger() -> None:
    lc = Lifecycle(trigger_minutes=3, quiet_minutes=5)
    assert run(lc, [HOT, HOT, COOL, HOT, HOT]) == []
    assert lc.phase is Phase.WATCH
    assert run(lc, [HOT]) == [(0, "triggered", 0, 3)] or lc.phase is Phase.CRISIS


def test_full_lifecycle_with_numbered_transitions() -> None:
    lc = Lifecycle(trigger_minutes=2, quiet_minutes=3)
    events = run(lc, [COOL, HOT, HOT, (True, False, 2), MID, COOL, COOL, HOT, COOL, COOL, COOL])
    assert events == [
        (2, "triggered", 0, 1),
        (3, "escalated", 1, 1),
        (5, "updated/quieting", 2, 1),
        (7, "updated/flare", 3, 1),
        (8, "updated/quieting", 4, 1),
        (10, "resolved", 5, 1),
    ]
    assert lc.phase is Phase.QUIET and lc.started_at is None and lc.transitions == 0


def test_neither_hot_nor_cool_holds_the_state_and_resets_the_quiet_count() -> None:
    lc = Lifecycle(trigger_minutes=1, quiet_minutes=3)
    events = run(lc, [HOT, COOL, COOL, MID, COOL, COOL, COOL])
    assert [e[1] for e in events] == ["triggered", "updated/quieting", "resolved"]
    assert events[-1][0] == 6


def test_severity_never_goes_down_within_a_crisis() -> None:
    lc = Lifecycle(trigger_minutes=1, quiet_minutes=2)
    events = run(lc, [(True, False, 3), (True, False, 1), (True, False, 2)])
    assert [e[1] for e in events] == ["triggered"]
    assert lc.severity == 3


def test_state_round_trip_mid_crisis() -> None:
    lc = Lifecycle(trigger_minutes=1, quiet_minutes=2)
    run(lc, [HOT, COOL])
    copy = Lifecycle(1, 2)
    copy.load(lc.to_state())
    assert [t.status for t in copy.step(9, False, True, 1)] == [Status.RESOLVED]
    assert [t.status for t in lc.step(9, False, True, 1)] == [Status.RESOLVED]


def test_a_strong_hot_minute_triggers_at_once_and_strong_without_hot_is_nothing() -> None:
    lc = Lifecycle(trigger_minutes=3, quiet_minutes=5)
    assert [t.status for t in lc.step(0, False, False, 1, strong=True)] == []
    assert lc.phase is Phase.QUIET
    assert [t.status for t in lc.step(1, True, False, 2, strong=True)] == [Status.TRIGGERED]
    assert lc.started_at == 1 and lc.severity == 2
    lc2 = Lifecycle(trigger_minutes=3, quiet_minutes=5)
    lc2.step(0, True, False, 1)  # under watch after one ordinary hot minute
    assert [t.status for t in lc2.step(1, True, False, 1, strong=True)] == [Status.TRIGGERED]
    assert lc2.started_at == 0  # the crisis is named by its first hot minute
