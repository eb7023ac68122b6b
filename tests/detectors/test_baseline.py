from __future__ import annotations

from detectors.baseline import BaselineConfig, SeasonalBaseline, hour_of_week

from .helpers import T0


def test_hour_of_week_starts_monday_utc() -> None:
    assert hour_of_week(T0) == 0  # Monday 00:00
    assert hour_of_week(T0 + 3600 * 24 * 3 + 3600 * 14) == 3 * 24 + 14  # Thursday 14:00
    assert hour_of_week(T0 + 3600 * 168) == 0


def test_cold_start_uses_overall_level_then_hour_of_day() -> None:
    b = SeasonalBaseline(BaselineConfig(mature_minutes=30))
    assert b.expect(T0).level == "none"
    for i in range(40):
        b.learn(T0 + 60 * i, 10, 2)
    assert b.expect(T0 + 60 * 40).level == "week"  # Monday 00:xx itself
    tuesday = b.expect(T0 + 86400 + 60 * 10)  # same hour of day, unseen hour of week
    assert tuesday.level == "day" and abs(tuesday.total - 10) < 1e-9 and abs(tuesday.negative - 2) < 1e-9
    # an hour of the day that has not been seen falls back to the overall level
    assert b.expect(T0 + 3600 * 5).level == "overall"


def test_learns_daily_rhythm() -> None:
    b = SeasonalBaseline()
    for day in range(3):
        for minute in range(24 * 60):
            busy = 9 * 60 <= minute < 17 * 60
            b.learn(T0 + 86400 * day + 60 * minute, 20 if busy else 2, 1)
    assert b.expect(T0 + 86400 * 3 + 3600 * 10).total > 15
    assert b.expect(T0 + 86400 * 3 + 3600 * 3).total < 5


def test_a_single_spike_is_clipped() -> None:
    b = SeasonalBaseline()
    for i in range(120):
        b.learn(T0 + 60 * i, 5, 1)
    before = b.expect(T0 + 60 * 61)
    b.learn(T0 + 60 * 60, 5000, 4000)  # one more minute of the hour slot 01:00
    after = b.expect(T0 + 60 * 61)
    assert after.level == before.level == "week"
    assert after.total - before.total < 1.0
    assert after.negative - before.negative < 1.0


def test_state_round_trip() -> None:
    b = SeasonalBaseline()
    for i in range(200):
        b.learn(T0 + 60 * i, i % 7, i % 3)
    c = SeasonalBaseline()
    c.load(b.to_state())
    assert c.expect(T0 + 60 * 200) == b.expect(T0 + 60 * 200)
    assert c.minutes_seen == 200


def _share(e) -> float:  # type: ignore[no-untyped-def]
    return e.negative / e.total


def test_a_small_brands_hour_slot_leans_on_the_brands_share_and_a_big_brands_follows_its_own() -> None:
    """Three mentions an hour: an hour whose handful of mentions happened to be mostly negative must not
    make "usual" mean 60% negative (it hid real crises of small brands); ten mentions a minute with a real
    morning peak of complaints must be learned as such."""
    small, big = SeasonalBaseline(), SeasonalBaseline()
    for day in range(7):
        for minute in range(24 * 60):
            t = T0 + 86400 * day + 60 * minute
            morning = 8 * 60 <= minute < 9 * 60
            # small: one mention every 20 minutes, one in five negative, but 08:00-09:00 always 3 of 3
            n = int(minute % 20 == 0)
            small.learn(t, n, int(n and (morning or minute % 100 == 0)))
            # big: 10 a minute, 15% negative, 40% from 08:00 to 09:00
            big.learn(t, 10, 4 if morning else (2 if minute % 20 < 3 else 1))
    morning = T0 + 86400 * 7 + 8 * 3600 + 1800
    assert abs(_share(small.expect(T0 + 86400 * 7 + 3 * 3600)) - 0.2) < 0.1
    assert _share(small.expect(morning)) < 0.5  # 3 of 3 a day, 21 mentions in a week: shrunk, not 1.0
    assert _share(big.expect(morning)) > 0.35  # 600 mentions a day at 40%: its own


def test_an_empty_hour_slot_pulls_the_rate_down_after_enough_quiet_minutes() -> None:
    b = SeasonalBaseline()
    for day in range(7):
        for minute in range(24 * 60):
            night = minute < 6 * 60
            b.learn(T0 + 86400 * day + 60 * minute, 0 if night else 12, 0 if night else 2)
    assert b.expect(T0 + 86400 * 7 + 3 * 3600).total < 1.0
    assert b.expect(T0 + 86400 * 7 + 15 * 3600).total > 11.0
