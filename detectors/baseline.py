"""What is normal for one brand at a given time of the week.

Per-minute rates of all mentions and of negative mentions are learned as
exponentially weighted means at three levels, from specific to general:

1. the hour of the week (Tuesday 14:00–15:00), which knows weekly rhythm but
   sees only 60 minutes a week;
2. the hour of the day, which learns within a day or two;
3. the brand overall, which learns within an hour.

A forecast uses the most specific level that has seen enough minutes
(``mature_minutes``), so a new brand starts from its overall rate and gains
daily and weekly shape as history accumulates (or as a backfill is replayed).

Robustness: an update is clipped to ``mean + clip_sigmas * sqrt(mean) + 3`` so a
single noisy minute cannot drag the baseline, and the detector does not call
:meth:`learn` while a brand is under watch or in crisis, so a crisis never
becomes the new normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

_WEEK_SLOTS = 168
_DAY_SLOTS = 24


@dataclass(frozen=True)
class BaselineConfig:
    overall_halflife_minutes: float = 360
    """Half-life of the overall per-minute means (6 hours)."""
    daily_halflife_minutes: float = 120
    """Half-life of an hour-of-day mean in its own observed minutes (= 2 days of that hour)."""
    weekly_halflife_minutes: float = 180
    """Half-life of an hour-of-week mean in its own observed minutes (= 3 weeks of that hour)."""
    mature_minutes: int = 30
    """Minutes a level must have seen before its forecast is trusted."""
    clip_sigmas: float = 5.0


def hour_of_week(minute: int) -> int:
    """0 = Monday 00:00 UTC (the Unix epoch fell on a Thursday)."""
    hours = minute // 3600
    return (hours + 72) % _WEEK_SLOTS


class _Level:
    """EWMA means of (all, negative) per-minute counts in a set of slots."""

    __slots__ = ("total", "negative", "seen", "alpha")

    def __init__(self, slots: int, halflife: float) -> None:
        self.total = [0.0] * slots
        self.negative = [0.0] * slots
        self.seen = [0] * slots
        self.alpha = 1.0 - math.pow(0.5, 1.0 / halflife)

    def learn(self, slot: int, total: float, negative: float) -> None:
        seen = self.seen[slot]
        # Until the EWMA has seen ~1/alpha minutes, use a plain running mean so the
        # first minutes are not dominated by the zero initial value.
        a = max(self.alpha, 1.0 / (seen + 1))
        self.total[slot] += a * (total - self.total[slot])
        self.negative[slot] += a * (negative - self.negative[slot])
        self.seen[slot] = seen + 1

    def to_state(self) -> dict[str, list]:
        return {"total": self.total, "negative": self.negative, "seen": self.seen}

    def load(self, state: dict[str, list]) -> None:
        self.total = [float(x) for x in state["total"]]
        self.negative = [float(x) for x in state["negative"]]
        self.seen = [int(x) for x in state["seen"]]


class Expectation(NamedTuple):
    total: float
    negative: float
    level: str
    """Which level answered: ``week``, ``day``, ``overall`` or ``none``."""


class SeasonalBaseline:
    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config or BaselineConfig()
        self._week = _Level(_WEEK_SLOTS, self.config.weekly_halflife_minutes)
        self._day = _Level(_DAY_SLOTS, self.config.daily_halflife_minutes)
        self._all = _Level(1, self.config.overall_halflife_minutes)

    @property
    def minutes_seen(self) -> int:
        return self._all.seen[0]

    def expect(self, minute: int) -> Expectation:
        mature = self.config.mature_minutes
        w = hour_of_week(minute)
        if self._week.seen[w] >= mature:
            return Expectation(self._week.total[w], self._week.negative[w], "week")
        d = w % _DAY_SLOTS
        if self._day.seen[d] >= mature:
            return Expectation(self._day.total[d], self._day.negative[d], "day")
        if self._all.seen[0] >= mature:
            return Expectation(self._all.total[0], self._all.negative[0], "overall")
        return Expectation(self._all.total[0], self._all.negative[0], "none")

    def learn(self, minute: int, total: int, negative: int, expected: Expectation | None = None) -> None:
        exp = expected or self.expect(minute)
        if exp.level != "none":
            k = self.config.clip_sigmas
            total = min(total, exp.total + k * math.sqrt(exp.total) + 3)
            negative = min(negative, exp.negative + k * math.sqrt(exp.negative) + 3)
        w = hour_of_week(minute)
        self._week.learn(w, total, negative)
        self._day.learn(w % _DAY_SLOTS, total, negative)
        self._all.learn(0, total, negative)

    def to_state(self) -> dict[str, object]:
        return {"week": self._week.to_state(), "day": self._day.to_state(), "all": self._all.to_state()}

    def load(self, state: dict[str, dict]) -> None:
        self._week.load(state["week"])
        self._day.load(state["day"])
        self._all.load(state["all"])
