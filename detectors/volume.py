"""Is a brand's mention volume significantly, and visibly, above normal right now?

One count per bucket (any width: a minute in the service, five minutes in NAB)
goes in; out comes a :class:`VolumeReading` whose ``alert`` is true on the
*onset* of an excess only.  A bucket is *hot* when the count over a sliding
window (``window_minutes``) passes two tests:

1. **Significant** against what is normal for this hour of the day: a
   one-sided negative-binomial tail against the window's expected count is at
   most ``p_value``.  The test is count-aware, nearly Poisson for small
   counts, so a brand with three mentions an hour needs several more mentions
   to be significant, not "three sigma"; for large counts the dispersion
   (variance = mean + dispersion * mean**2) keeps a brand with thousands of
   mentions from being "significant" at +5%.  How variable a brand is differs
   a lot (on NAB realTweets from under 0.01 to 0.7), so the dispersion is learned
   per brand from the spread of log(window / expected), whose variance is
   about ``dispersion + 1 / expected``: an exponentially weighted mean of its
   square, each value clipped at three current standard deviations so a burst
   (or a crisis) moves it little.
2. **Visible** above the brand's daily peaks: the window must reach the level
   that the brand's busiest window of the day exceeds only once in
   ``peak_return_days`` days (a log-normal fit to the daily maxima of the
   window count: their exponentially weighted mean and spread in log space),
   and at least ``min_peak_ratio`` times the typical daily peak.  Daily rhythm
   and the ordinary day-to-day swing of a brand's busiest hour are normal even
   where the hour-of-day baseline lags behind them; a brand whose peaks swing
   a lot (bot bursts some days) needs a larger excess than a steady one.
   Until a first full UTC day has given a daily peak, the bar is
   ``cold_start_ratio`` times the largest window seen so far (or the window's
   expectation, if larger): a new brand's first day only alerts on a jump, not
   on its first morning rise; nothing is hot in the first ``warmup_hours``.

After an alert the detector holds off for ``holdoff_hours``: one alert per
episode, however long it lasts (how a crisis develops is the lifecycle's job).

The expectation is an exponentially weighted mean per hour of the day,
falling back to the overall rate until an hour has been seen for
``mature_minutes`` (the half-lives and maturity of the service's
:class:`~detectors.baseline.SeasonalBaseline`).  It has no hour-of-week level:
one that trusts itself after one week's half hour is noisy for weeks, and on
NAB realTweets (eight weeks) it cost 4 to 7 points at 15- to 30-minute
windows.  A bucket is learned clipped to ``clip_ratio`` times its expectation
(plus ``clip_count``) -- relative rather than ``mean + k sqrt(mean)``, which
would cut most above-average buckets of a brand with thousands of mentions and
bias it low -- and, while an alert holds, to the expectation itself, so a
crisis never becomes the new normal while a real drop is still followed.  A
day's peak is learned at most at the visibility bar for the same reason.

Pure and deterministic: no clock, no I/O, no randomness; the state is JSON
compatible (:meth:`VolumeDetector.to_state` / :meth:`VolumeDetector.from_state`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from scipy.special import betainc, gammainc, ndtri

STATE_VERSION = 1
_DAY = 86400
_HOURS = 24
_MIN_DISPERSION = 0.01


@dataclass(frozen=True)
class VolumeConfig:
    """Settings of the volume detector.  Durations are in time, not buckets, so one config fits any bucket width."""

    bucket_seconds: int = 60
    window_minutes: int = 10
    """Sliding window the tests sum over (the service's ``window_minutes``)."""
    p_value: float = 1e-3
    """Largest one-sided NB tail of the window that counts as significant (the service's ``p_value``)."""
    min_expected: float = 1.0
    """Floor of the window's expected count, so a silent brand's first few mentions are not infinitely surprising."""
    initial_dispersion: float = 0.1
    """Dispersion assumed before the brand's own is learned (0.1: the count varies by about 30 % at large counts)."""
    dispersion_halflife_days: float = 7.0
    """Half-life of the learned dispersion, in days."""
    peak_return_days: float = 14.0
    """The window must reach the level the brand's daily peak window exceeds once in this many days."""
    min_peak_ratio: float = 1.2
    """The window must also reach this multiple of the typical daily peak window, however steady the peaks are."""
    peak_halflife_days: float = 7.0
    """Half-life, in days, of the mean and spread of the log daily peak."""
    peak_prior_sd: float = 0.5
    """Spread of the log daily peak assumed before the brand's own is known (a factor of 1.6)."""
    daily_halflife_days: float = 2.0
    """Half-life of an hour-of-day mean, in days of that hour."""
    overall_halflife_hours: float = 6.0
    """Half-life of the overall rate, the cold-start fallback of the hour-of-day means."""
    mature_minutes: int = 30
    """Observed time after which an hour of the day trusts its own mean."""
    clip_ratio: float = 2.0
    clip_count: float = 3.0
    """A bucket is learned as at most ``clip_ratio * expected + clip_count`` (``expected + clip_count`` under alert)."""
    warmup_hours: float = 2.0
    """No alert before this much history (the service's ``warmup_minutes``)."""
    cold_start_ratio: float = 3.0
    """Until a first full day gives the daily peak, the window must reach this multiple of the largest window so far
    and of its expectation."""
    holdoff_hours: float = 24.0
    """After an alert, no new alert for this long."""

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0 or self.window_minutes * 60 < self.bucket_seconds:
            raise ValueError("bucket_seconds must be positive and window_minutes at least one bucket long")
        if not 0 < self.p_value < 1 or self.initial_dispersion < 0 or self.min_expected <= 0:
            raise ValueError("p_value must be in (0, 1), initial_dispersion not negative, min_expected positive")
        if self.peak_return_days <= 1 or self.min_peak_ratio < 1 or self.cold_start_ratio < 1:
            raise ValueError("peak_return_days must be above 1, min_peak_ratio and cold_start_ratio at least 1")

    @property
    def window_buckets(self) -> int:
        return max(1, round(self.window_minutes * 60 / self.bucket_seconds))


def nb_tail(k: float, mean: float, dispersion: float) -> float:
    """P(X >= k) for a negative binomial with this mean and variance ``mean + dispersion * mean**2``.

    Continuous in ``k`` (regularised incomplete beta); the Poisson tail when there is no dispersion.
    """
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if dispersion <= 1e-9:
        return float(gammainc(k, mean))
    size = 1.0 / dispersion
    return float(betainc(k, size, mean / (size + mean)))


class VolumeReading(NamedTuple):
    """What the detector saw and decided for one bucket."""

    at: int
    count: int
    expected: float
    window_count: int
    window_expected: float
    peak_bar: float
    """Window count the visibility test asks for (see ``cold_start_ratio`` for the time before a first full day)."""
    dispersion: float
    p_value: float
    """NB tail of the window against its (floored) expectation; 1.0 when below the peak bar (not computed)."""
    hot: bool
    alert: bool
    """True on the bucket an episode starts (onset only)."""
    holding: bool
    """Within ``holdoff_hours`` of the last alert."""

    @property
    def ratio(self) -> float:
        return self.window_count / self.window_expected if self.window_expected > 0 else math.inf


class VolumeDetector:
    """Online volume-excess detector for one series: :meth:`update` one bucket at a time, in time order."""

    def __init__(self, config: VolumeConfig | None = None) -> None:
        self.config = cfg = config or VolumeConfig()
        b = cfg.bucket_seconds
        self._alpha_hour = _alpha(cfg.daily_halflife_days * 3600 / b)
        self._alpha_all = _alpha(cfg.overall_halflife_hours * 3600 / b)
        self._mature = max(1, round(cfg.mature_minutes * 60 / b))
        self._alpha_peak = _alpha(cfg.peak_halflife_days)
        self._alpha_disp = _alpha(cfg.dispersion_halflife_days * _DAY / b)
        self._z = float(ndtri(1.0 - 1.0 / cfg.peak_return_days))
        self._min_lift = math.log(cfg.min_peak_ratio)
        self.hour_mean = [0.0] * _HOURS
        self.hour_seen = [0] * _HOURS
        self.overall = 0.0
        self.seen = 0
        self.dispersion = cfg.initial_dispersion
        self.log_sq = math.nan
        """Exponentially weighted mean of log((window + 0.5) / (expected + 0.5))**2."""
        self.inv_expected = 0.0
        """... and of 1 / (expected + 0.5), its Poisson part."""
        self.windows_seen = 0
        self.peak_mean = math.nan
        """Exponentially weighted mean of log(1 + the day's largest window count), over mostly observed days."""
        self.peak_var = cfg.peak_prior_sd ** 2
        self.peak_days = 0
        self.day: int | None = None
        self.day_max = 0
        self.day_buckets = 0
        self.first_days_max = 0
        """Largest window count before the first full day (the cold-start reference)."""
        self.window: deque[tuple[int, float]] = deque(maxlen=cfg.window_buckets)
        self.first_at: int | None = None
        self.last_at: int | None = None
        self.alerted_at: int | None = None

    def expect(self, at: int) -> float:
        """Expected count of the bucket starting at ``at`` (epoch seconds, UTC)."""
        h = (at // 3600) % _HOURS
        return self.hour_mean[h] if self.hour_seen[h] >= self._mature else self.overall

    @property
    def peak_bar(self) -> float:
        """Window count a hot bucket needs to reach: above the daily peaks of all but one day in the return period."""
        if math.isnan(self.peak_mean):
            return math.inf
        lift = max(self._min_lift, self._z * math.sqrt(self.peak_var))
        return math.expm1(self.peak_mean + lift)

    def update(self, at: int, count: int) -> VolumeReading:
        """Feed the bucket starting at ``at`` (epoch seconds, after the previous bucket) holding ``count`` mentions."""
        cfg = self.config
        if self.last_at is not None and at <= self.last_at:
            raise ValueError(f"bucket at {at} is not after the previous one at {self.last_at}")
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if self.last_at is not None and at - self.last_at > cfg.window_minutes * 60:
            self.window.clear()  # a gap: the window no longer describes "now"
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        self._roll_day(at)
        expected = self.expect(at)
        self.window.append((count, expected))
        w_count = sum(c for c, _ in self.window)
        w_expected = sum(e for _, e in self.window)
        floor = max(w_expected, cfg.min_expected)
        bar = self.peak_bar if self.peak_days else cfg.cold_start_ratio * max(floor, self.first_days_max)
        if not self.peak_days:
            self.first_days_max = max(self.first_days_max, w_count)
        self.day_max = max(self.day_max, w_count)
        self.day_buckets += 1

        # The tail is only worth computing for a window that is visible at all (most are not).
        p = nb_tail(w_count, floor, self.dispersion) if w_count >= bar and w_count > floor else 1.0
        ready = at - self.first_at >= cfg.warmup_hours * 3600 and self.seen >= self._mature
        hot = ready and p <= cfg.p_value
        holding = self.alerted_at is not None and at - self.alerted_at < cfg.holdoff_hours * 3600
        alert = hot and not holding
        if alert:
            self.alerted_at, holding = at, True
        self._learn_dispersion(w_count, w_expected)
        self._learn(at, count, expected, holding)
        return VolumeReading(at, count, expected, w_count, w_expected, bar, self.dispersion, p, hot, alert, holding)

    def _learn_dispersion(self, w_count: int, w_expected: float) -> None:
        """var(log ratio) ~ dispersion + 1/expected (delta method), so dispersion ~ E[r**2] - E[1/expected].

        A bias of the baseline counts as spread too: the test must allow for the baseline's own error.
        """
        if self.seen < self._mature or w_expected <= 0:
            return
        inv = 1.0 / (w_expected + 0.5)
        r = math.log((w_count + 0.5) / (w_expected + 0.5))
        if math.isnan(self.log_sq):
            self.log_sq, self.inv_expected = self.config.initial_dispersion + inv, inv
        limit = 3.0 * math.sqrt(self.log_sq)
        r = min(max(r, -limit), limit)
        self.windows_seen += 1
        a = max(self._alpha_disp, 1.0 / (self.windows_seen + 1))
        self.log_sq += a * (r * r - self.log_sq)
        self.inv_expected += a * (inv - self.inv_expected)
        self.dispersion = max(self.log_sq - self.inv_expected, _MIN_DISPERSION)

    def _learn(self, at: int, count: int, expected: float, holding: bool) -> None:
        cfg = self.config
        x = float(count)
        if self.seen >= self._mature:
            x = min(x, (1.0 if holding else cfg.clip_ratio) * expected + cfg.clip_count)
        h = (at // 3600) % _HOURS
        self.hour_seen[h] += 1
        self.hour_mean[h] += max(self._alpha_hour, 1.0 / self.hour_seen[h]) * (x - self.hour_mean[h])
        self.seen += 1
        self.overall += max(self._alpha_all, 1.0 / self.seen) * (x - self.overall)

    def _roll_day(self, at: int) -> None:
        """On a new UTC day, learn the finished day's largest window count if the day was mostly observed."""
        day = at // _DAY
        if self.day is None:
            self.day = day
        if day == self.day:
            return
        if self.day_buckets * self.config.bucket_seconds >= 0.75 * _DAY:
            x = math.log1p(self.day_max)
            if math.isnan(self.peak_mean):
                self.peak_mean = x
            else:
                x = min(x, math.log1p(self.peak_bar))  # a crisis day counts at most as a day at the bar
                a = max(self._alpha_peak, 1.0 / (self.peak_days + 1))
                d = x - self.peak_mean
                self.peak_mean += a * d
                self.peak_var = (1.0 - a) * (self.peak_var + a * d * d)
            self.peak_days += 1
        self.day, self.day_max, self.day_buckets = day, 0, 0

    # --- state -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        return {
            "version": STATE_VERSION,
            "hour_mean": list(self.hour_mean), "hour_seen": list(self.hour_seen),
            "overall": self.overall, "seen": self.seen, "dispersion": self.dispersion,
            "log_sq": None if math.isnan(self.log_sq) else self.log_sq, "inv_expected": self.inv_expected,
            "windows_seen": self.windows_seen,
            "peak_mean": None if math.isnan(self.peak_mean) else self.peak_mean,
            "peak_var": self.peak_var, "peak_days": self.peak_days,
            "day": self.day, "day_max": self.day_max, "day_buckets": self.day_buckets,
            "first_days_max": self.first_days_max,
            "window": [[c, e] for c, e in self.window],
            "first_at": self.first_at, "last_at": self.last_at, "alerted_at": self.alerted_at,
        }

    @classmethod
    def from_state(cls, state: dict, config: VolumeConfig | None = None) -> VolumeDetector:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"volume state version {state.get('version')!r} is not {STATE_VERSION}")
        det = cls(config)
        det.hour_mean = [float(x) for x in state["hour_mean"]]
        det.hour_seen = [int(x) for x in state["hour_seen"]]
        det.overall, det.seen, det.dispersion = float(state["overall"]), int(state["seen"]), float(state["dispersion"])
        det.log_sq = math.nan if state["log_sq"] is None else float(state["log_sq"])
        det.inv_expected, det.windows_seen = float(state["inv_expected"]), int(state["windows_seen"])
        det.peak_mean = math.nan if state["peak_mean"] is None else float(state["peak_mean"])
        det.peak_var, det.peak_days = float(state["peak_var"]), int(state["peak_days"])
        det.day, det.day_max, det.day_buckets = state["day"], int(state["day_max"]), int(state["day_buckets"])
        det.first_days_max = int(state["first_days_max"])
        det.window.extend((int(c), float(e)) for c, e in state["window"])
        det.first_at, det.last_at, det.alerted_at = state["first_at"], state["last_at"], state["alerted_at"]
        return det


def _alpha(halflife: float) -> float:
    """EWMA weight for a half-life of ``halflife`` updates."""
    return 1.0 - math.pow(0.5, 1.0 / max(halflife, 1e-9))
