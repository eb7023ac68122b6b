"""What is normal for one brand at a given time of the week.

Per-minute rates of all mentions and of negative mentions are learned as
exponentially weighted means at three levels, from specific to general:

1. the hour of the week (Tuesday 14:00–15:00), which knows weekly rhythm but
   sees only 60 minutes a week;
2. the hour of the day, which learns within a day or two;
3. the brand overall, which learns within an hour.

A forecast blends the levels by how much evidence each has (hierarchical
shrinkage, empirical Bayes): the hour of the day is shrunk toward the overall
rate, the hour of the week toward that, each with the weight
``evidence / (evidence + prior)``, where the evidence is the number of
mentions the level's slot has seen (its EWMA mean x its effective minutes).
A brand of ten mentions a minute trusts a slot after a few minutes; a brand of
five an hour leans on its overall rate until a slot has seen dozens of
mentions, instead of trusting 30 noisy minutes.  The negative *share* is shrunk
the same way, toward a long-memory share of the brand's last
``share_halflife_mentions`` mentions: a share is a per-mention statistic, and
estimated from the twenty-odd mentions a small brand's hour slot holds it
wandered from 0.05 to 0.6 (benchmarks/crisis.py), which hid real crises of
small brands behind an inflated "usual" share.  So a new brand starts from its
overall rate and gains daily and weekly shape as history accumulates (or as a
backfill is replayed).

Robustness: an update is clipped to ``mean + clip_sigmas * sqrt(mean) + 3`` so a
single noisy minute cannot drag the baseline, and the detector does not call
:meth:`learn` with a crisis's minutes (unless the crisis outlasts the
detector's hold-back cap: a lasting change of normal), so a crisis does not
become the new normal.
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
    """Minutes the brand must have been seen before any forecast is trusted (before that, level ``none``), and
    the least strength of a slot's prior: a slot's own rate gets half the weight after this many minutes."""
    prior_mentions: float = 20.0
    """Strength of a slot's prior in mentions, for small brands: a slot's own rate gets half the weight once
    it has seen this many mentions (or ``mature_minutes`` minutes, whichever takes longer)."""
    share_prior_mentions: float = 50.0
    """The same for the negative share (a proportion needs more mentions than a rate to settle)."""
    share_halflife_mentions: float = 1000.0
    """Half-life, in mentions, of the brand's long-memory negative share (the share prior)."""
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

    def effective_minutes(self, slot: int) -> float:
        """The EWMA's weight mass: its minutes seen, up to ``1 / alpha``."""
        return min(float(self.seen[slot]), 1.0 / self.alpha)

    def shrink(self, slot: int, rate: float, share: float, prior_minutes: float, prior: float,
               share_prior: float) -> tuple[float, float, float]:
        """This slot's (rate, share) shrunk toward a parent's, and the weight the slot's own rate got.

        Gamma-Poisson for the rate (a prior worth ``prior`` mentions at the parent rate, or ``prior_minutes``
        minutes if that is more), beta-binomial for the share (``share_prior`` mentions at the parent
        share)."""
        n = self.effective_minutes(slot)
        count = self.total[slot] * n
        pseudo_minutes = max(prior_minutes, prior / rate) if rate > 0 else prior_minutes
        weight = n / (n + pseudo_minutes)
        rate = (count + pseudo_minutes * rate) / (n + pseudo_minutes)
        share = (self.negative[slot] * n + share_prior * share) / (count + share_prior)
        return rate, share, weight

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
        self._share = 0.0
        """The long-memory negative share (EWMA over mentions)."""
        self._share_keep = math.pow(0.5, 1.0 / self.config.share_halflife_mentions)

    @property
    def minutes_seen(self) -> int:
        return self._all.seen[0]

    def expect(self, minute: int) -> Expectation:
        cfg = self.config
        rate = self._all.total[0]
        share = self._share
        if self._all.seen[0] < cfg.mature_minutes:
            return Expectation(rate, rate * share, "none")
        level = "overall"
        w = hour_of_week(minute)
        for lvl, slot, name in ((self._day, w % _DAY_SLOTS, "day"), (self._week, w, "week")):
            rate, share, weight = lvl.shrink(slot, rate, share, cfg.mature_minutes, cfg.prior_mentions,
                                             cfg.share_prior_mentions)
            if weight >= 0.5:
                level = name
        return Expectation(rate, rate * share, level)

    def learn(self, minute: int, total: int, negative: int, expected: Expectation | None = None) -> None:
        exp = expected or self.expect(minute)
        if exp.level != "none":
            k = self.config.clip_sigmas
            total = min(total, exp.total + k * math.sqrt(exp.total) + 3)
            negative = min(negative, exp.negative + k * math.sqrt(exp.negative) + 3)
        if total > 0:
            # each mention moves the share by the same step, so a minute of n mentions weighs n times one
            seen = self._all.total[0] * self._all.effective_minutes(0)  # ~ mentions seen so far
            keep = min(self._share_keep ** total, seen / (seen + total))  # a running mean at first
            self._share = keep * self._share + (1.0 - keep) * min(negative / total, 1.0)
        w = hour_of_week(minute)
        self._week.learn(w, total, negative)
        self._day.learn(w % _DAY_SLOTS, total, negative)
        self._all.learn(0, total, negative)

    def to_state(self) -> dict[str, object]:
        return {"week": self._week.to_state(), "day": self._day.to_state(), "all": self._all.to_state(),
                "share": self._share}

    def load(self, state: dict) -> None:
        self._week.load(state["week"])
        self._day.load(state["day"])
        self._all.load(state["all"])
        self._share = float(state["share"])
