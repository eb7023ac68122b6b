"""The rate limit on repetitive log lines (one warning per dead letter was 359k lines in a brand flood)."""

from __future__ import annotations

import logging

import pytest

from listener.logs import RateLimitedLog

log = logging.getLogger("crisiswatch.test.logs")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == log.name]


def test_at_most_n_lines_per_key_per_minute_then_one_summary_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    now = [1000.0]
    limited = RateLimitedLog(log, "dead letters", per_window=3, window_s=60.0, clock=lambda: now[0])
    said = [limited.warning("bad_json", "dead letter t/0/%d: bad json", i) for i in range(10)]
    said += [limited.warning("too_large", "dead letter t/1/%d: too large", i) for i in range(2)]
    assert said == [True] * 3 + [False] * 7 + [True] * 2
    assert lines(caplog) == [f"dead letter t/0/{i}: bad json" for i in range(3)] + [
        f"dead letter t/1/{i}: too large" for i in range(2)]
    assert limited.suppressed == {"bad_json": 7}

    now[0] += 59.0
    limited.flush()  # the window is not over: nothing yet
    assert len(lines(caplog)) == 5
    now[0] += 1.0
    caplog.clear()
    limited.flush()  # over: the summary, once, at the level of the lines it stands for
    assert lines(caplog) == ["... and 7 more dead letters (bad_json) in the last minute"]
    assert caplog.records[-1].levelno == logging.WARNING
    limited.flush()
    assert len(lines(caplog)) == 1

    # a new window: lines again, and a summary comes with the next line if nobody flushed
    caplog.clear()
    for i in range(5):
        limited.error("bad_json", "dead letter t/0/%d", 100 + i)
    now[0] += 61.0
    limited.error("bad_json", "dead letter t/0/%d", 200)
    assert lines(caplog) == ["dead letter t/0/100", "dead letter t/0/101", "dead letter t/0/102",
                             "... and 2 more dead letters (bad_json) in the last minute", "dead letter t/0/200"]
    assert all(r.levelno == logging.ERROR for r in caplog.records)


def test_a_flood_stays_a_handful_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    now = [0.0]
    limited = RateLimitedLog(log, "dead letters", per_window=10, clock=lambda: now[0])
    for i in range(359_000):  # an hour of a flood, 100 a second
        now[0] = i / 100
        limited.warning("bad_json" if i % 3 else "no_brand", "dead letter %d", i)
    limited.flush(force=True)
    got = lines(caplog)
    # per reason and minute: 10 lines and one summary; nothing lost from the count
    assert len(got) <= 2 * 60 * 11
    summed = sum(int(m.split()[2]) for m in got if m.startswith("... and "))
    assert summed + sum(1 for m in got if m.startswith("dead letter")) == 359_000


def test_a_summary_names_a_window_that_is_not_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    now = [0.0]
    limited = RateLimitedLog(log, "bad alert events", per_window=1, window_s=10.0, clock=lambda: now[0])
    limited.warning("bad_alert_event", "one")
    limited.warning("bad_alert_event", "two")
    limited.flush(force=True)  # at shutdown: what is pending, window over or not
    assert lines(caplog) == ["one", "... and 1 more bad alert events (bad_alert_event) in the last 10 s"]
