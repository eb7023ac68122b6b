"""The crisis detector for one brand: feed minutes, get alert events.

Online-learning style API::

    det = CrisisDetector("acme", DetectorConfig())
    for bucket in buckets:           # consecutive minutes, event time
        reading, events = det.update(bucket)
    state = det.to_state()           # JSON-compatible
    det2 = CrisisDetector.from_state(state, DetectorConfig())

A minute is *hot* when one of three tests finds negative talk beyond the brand's own normal, measured on
a scale that follows the brand's own variability, and the negative talk has a theme:

* **excess** — over the last 10, 30 or 90 minutes, more negative *voices* than usual (quasi-Poisson, with
  the variance/mean learned from the brand's own history for each window length), at least
  ``min_ratio`` times the usual, and the extra talk more negative than the usual mix (log-odds lift and a
  binomial test), still so without the window's worst minute;
* **share shift** — over a long window, the mix itself turned negative (log-odds) with little extra volume;
* **sustained excess** — a Poisson CUSUM over 10-minute blocks against ``cusum_ratio`` (2.5) times the usual:
  a bad day that builds to 2-3x and stays there for hours, which no single window proves.

Voices, not mentions: an author counts once per window and a cascade of copies of one post as one voice
plus ``repost_weight`` a copy; the baseline is scaled by the share of independent voices the brand usually
has, so like is compared with like.  A statistically hot window whose negative mentions share no
distinctive terms is told as a low-severity *notice*, never a page.  Before the baseline has seen
``warmup_minutes`` and ``warmup_mentions`` nothing is hot; a brand that appears out of nothing restarts its
warm-up with a notice.  The :class:`~detectors.lifecycle.Lifecycle` turns hot/cool minutes into transitions;
this module turns transitions into explained alert events.

Pure and deterministic: no clock, no I/O, no randomness.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from itertools import islice
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from .baseline import BaselineConfig, Expectation, SeasonalBaseline
from .buckets import MentionDigest, MinuteBucket
from .events import AlertEvent, Severity, Status, crisis_id, iso, notice_id
from .explain import (
    TermBackground,
    brand_words,
    distinctive_terms,
    documents,
    playbook,
    representative,
    text_key,
)
from .lifecycle import Lifecycle, Phase, Transition
from .signals import WindowSignal, logit, poisson_tail, window_signal
from .volume import VolumeConfig, VolumeDetector, VolumeReading

STATE_VERSION = 3
_SUSPECT_RATIO = 1.25
"""A window must hold at least this many times the usual negatives to be suspect (and significant): a
lasting 1.4x is worth holding back, which the resolve ratio (1.5) would miss."""
_RESIDUAL_CAP = 25.0
"""A window's squared Pearson residual is capped here before the dispersion learns it, so one crisis that
slipped into the quiet history cannot inflate a brand's variance for days."""
_MIN_BACKGROUND = 100
"""Below this many ordinary negative texts learned, a theme is a term shared by enough texts, distinctive or
not (a young brand's background cannot tell)."""
_LEARN_DAYS_MINUTES = 3 * 24 * 60
"""Half-life of the learned dispersion and independence, in minutes of history (three days)."""


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings (the ``[detector]`` table of the config file)."""

    window_minutes: int = 10
    long_windows_minutes: tuple[int, ...] = (30, 90)
    """Longer windows tested with the same rules when the short one is not hot (() = none): a small brand's
    crisis adds a handful of complaints an hour, too few for ten minutes to be significant, and a slow burn
    builds over hours."""
    share_shift_log_odds: float = 0.7
    """Over a long window, a negative share this far above the usual share in log-odds (0.7: 20% -> 33%,
    45% -> 62%, 80% -> 89%) is hot without the volume tests (a share shift: the mix turns negative, the
    volume barely moves); 0 = off."""
    suspect_p_value: float = 0.01
    """A window this significant (in volume or share) is *suspect*: its minutes are held back from the
    baseline, for at most ``max_holdback_minutes``, so a crisis that builds slowly is not learned as normal
    before it is certain."""
    max_holdback_minutes: int = 360
    trigger_minutes: int = 3
    trigger_window_minutes: int = 5
    """``trigger_minutes`` hot minutes within this many start a crisis (3 of 5: a crisis that flickers
    around the threshold still starts)."""
    strong_p_value: float = 1e-6
    """A hot window whose volume test is this significant starts the crisis at once, without waiting for
    ``trigger_minutes`` (0 = never): evidence a thousand times beyond the hot bar is not a flicker."""
    quiet_minutes: int = 30
    min_negatives: int = 10
    """Negative voices a window needs before it can be hot."""
    min_ratio: float = 2.0
    """Negative voices must be at least this many times the usual (the significance test does the rest:
    a brand whose negatives barely vary pages at 2x sustained, a bursty one needs more)."""
    min_log_odds: float = 0.7
    """The extra talk must be at least this much more negative than the usual mix, in log-odds (0.7 =
    twice the odds: 10% -> 18%, 50% -> 67%, 80% -> 89%): a burst of ordinary chatter is of the usual mix."""
    p_value: float = 1e-3
    share_p_value: float = 0.01
    """The share test's level.  The volume test (at ``p_value``) is what keeps chance spikes out; the share
    test only has to show the excess is negative rather than a spike of the usual mix."""
    strong_share_p_value: float = 0.05
    """The share test's level when the volume test is overwhelming (``strong_p_value``): with a thousand times
    the evidence the excess is not chance, and the share test only has to show it is not of the usual mix
    (for a brand whose talk is usually 75% complaints a binomial test has little power on a short window)."""
    dispersion: float = 2.0
    """Prior variance / mean of a window's negative count (quasi-Poisson): what a brand starts with before
    its own history has taught it (``dispersion_prior_windows`` windows' worth of weight)."""
    dispersion_prior_windows: float = 20.0
    max_dispersion: float = 20.0
    share_dispersion: float = 1.0
    """Variance / mean of the negative share (binomial test): a ratio of two counts that burst together is
    far less overdispersed."""
    min_expected_negatives: float = 1.0
    min_baseline_share: float = 0.05
    resolve_ratio: float = 1.5
    cusum_ratio: float = 2.5
    """The sustained-excess test looks for negatives at this many times the usual, block after block: the
    middle of the 2-3x a bad day reaches (a Poisson CUSUM: it gains on any block above (ratio - 1) / ln(ratio)
    = 1.64x, and alarms only when the whole run averages nearer this ratio than the usual, (1 + ratio) / 2 =
    1.75x; at 2.0 the hour slots still catching up with a lasting change of normal paged again and again)."""
    cusum_threshold: float = 10.0
    """Log-likelihood ratio (dispersion-scaled) at which the sustained excess is hot (0 = off): about
    ln(1/p) for a one-in-22,000 chance run of ordinary blocks."""
    repost_weight: float = 0.1
    """A copy of a post (a retweet, a paste) counts this much of a voice beyond the first."""
    severity_ratios: tuple[float, float, float] = (3.0, 6.0, 12.0)
    high_reach: int = 1_000_000
    warmup_minutes: int = 120
    warmup_mentions: int = 30
    """Nothing is hot before the baseline has learned this many mentions over ``warmup_minutes``: a rate
    known from a handful of mentions is not a baseline."""
    theme_min_voices: int = 3
    theme_min_share: float = 0.15
    """A crisis needs a theme: a distinctive term in at least this many distinct negative texts and this
    share of them.  Without one a hot window is told as a notice, not a page."""
    response_minutes: int = 30
    terms: int = 5
    background_mentions: int = 2000
    volume_notices: bool = True
    """Run the volume detector (:mod:`detectors.volume`, the one scored on NAB realTweets) on each brand's
    mentions and send a ``notice`` (severity info) for a volume spike that is not a crisis: a viral post, a
    news story.  People want to know their brand is suddenly talked about; it is not worth a page."""
    notice_delay_minutes: int = 5
    """A volume spike is told only if no crisis has begun this many minutes after it started (the first
    minutes of a crisis are a volume spike too, and a notice just before the crisis alert is noise)."""
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    @property
    def spans(self) -> tuple[int, ...]:
        """The window lengths tested, shortest first."""
        return tuple(sorted({self.window_minutes, *self.long_windows_minutes}))

    def volume(self) -> VolumeConfig:
        """The volume detector's settings, shared with ``crisiswatch nab``: the same window, significance
        level and warm-up as the crisis tests; minute buckets."""
        return VolumeConfig(bucket_seconds=60, window_minutes=self.window_minutes, p_value=self.p_value,
                            warmup_hours=self.warmup_minutes / 60, cold_start_ratio=3.0)


class _Learned:
    """An exponentially weighted mean with a prior, kept within bounds: a brand's own dispersion or independence,
    per window length, learned from its quiet windows.  ``current`` is refreshed when it learns (it is read
    several times a minute and changes once a window)."""

    __slots__ = ("weight", "total", "keep", "prior", "prior_weight", "lo", "hi", "current")

    def __init__(self, span: int, prior: float, prior_weight: float, lo: float, hi: float,
                 weight: float = 0.0, total: float = 0.0) -> None:
        self.weight, self.total = weight, total
        self.keep = math.pow(0.5, span / _LEARN_DAYS_MINUTES)
        self.prior, self.prior_weight, self.lo, self.hi = prior, prior_weight, lo, hi
        self.current = self._value()

    def add(self, x: float) -> None:
        self.weight = self.weight * self.keep + 1.0
        self.total = self.total * self.keep + x
        self.current = self._value()

    def _value(self) -> float:
        value = (self.total + self.prior * self.prior_weight) / (self.weight + self.prior_weight)
        return min(max(value, self.lo), self.hi)


class _Run(NamedTuple):
    """The sustained-excess test's state: the CUSUM statistic and the sums of the blocks since it last
    stood at zero (mentions, negatives, expected mentions, expected negatives, minutes)."""

    score: float = 0.0
    mentions: int = 0
    negatives: int = 0
    expected_mentions: float = 0.0
    expected_negatives: float = 0.0
    minutes: int = 0


class _Hot(NamedTuple):
    """What :meth:`CrisisDetector._scan` found."""

    signal: WindowSignal
    span: int
    hot: bool
    suspect: bool
    themeless: bool = False
    strong: bool = False


class Reading(NamedTuple):
    """What the detector saw and decided for one minute (one row of the per-minute series)."""

    bucket: MinuteBucket
    expected_mentions: float
    expected_negative: float
    window: WindowSignal
    hot: bool
    phase: Phase
    baseline_level: str
    window_minutes: int

    @property
    def brand(self) -> str:
        return self.bucket.brand

    @property
    def minute(self) -> int:
        return self.bucket.minute

    def to_row(self) -> dict[str, object]:
        """One row of the per-minute series; ``minute`` is the minute's start (alerts' ``at`` is an end)."""
        w, b = self.window, self.bucket
        return {
            "brand": b.brand,
            "minute": iso(b.minute),
            "mentions": b.mentions,
            "negative": b.negative,
            "neutral": b.neutral,
            "positive": b.positive,
            "authors": b.authors,
            "reposts": b.reposts,
            "reach": b.reach,
            "negative_reach": b.negative_reach,
            "late": b.late,
            "expected_mentions": round(self.expected_mentions, 4),
            "expected_negative": round(self.expected_negative, 4),
            "window_minutes": self.window_minutes,
            "window_mentions": w.mentions,
            "window_negatives": w.negatives,
            "window_expected_mentions": round(w.expected_mentions, 3),
            "window_expected_negatives": round(w.expected_negatives, 3),
            "window_voices": round(w.voices, 2),
            "window_expected_voices": round(w.expected_voices, 3),
            "negative_ratio": round(w.negative_ratio, 3),
            "negative_share": round(w.mention_share, 4),
            "baseline_share": round(w.mention_baseline_share, 4),
            "p_volume": float(f"{w.p_volume:.3g}"),
            "p_share": float(f"{w.p_share:.3g}"),
            "hot": int(self.hot),
            "phase": self.phase.value,
            "baseline_level": self.baseline_level,
        }


class CrisisDetector:
    def __init__(self, brand: str, config: DetectorConfig | None = None) -> None:
        self.brand = brand
        self.config = config or DetectorConfig()
        cfg = self.config
        self.baseline = SeasonalBaseline(cfg.baseline)
        self.lifecycle = Lifecycle(cfg.trigger_minutes, cfg.quiet_minutes,
                                   max(0, cfg.trigger_window_minutes - cfg.trigger_minutes))
        self._exclude = brand_words(brand)
        self.background = TermBackground(cfg.background_mentions, self._exclude)
        self._spans = cfg.spans
        self._window: deque[tuple[MinuteBucket, Expectation]] = deque(maxlen=self._spans[-1])
        self._cum: deque[tuple[int, int, float, float]] = deque(maxlen=self._spans[-1] + 1)
        """Running sums of (mentions, negatives, expected mentions, expected negatives) before each minute
        of the window and after the last; not saved (rebuilt from the window)."""
        self._clear_window()
        self._span = cfg.window_minutes
        """How many of the latest minutes make "the window" now: the one that was hot, else the short one."""
        self._signal_minutes = cfg.window_minutes
        """The minutes the reported signal covers (a sustained excess's run can outlast the window)."""
        self._crisis_span = cfg.window_minutes
        """The longest window the running crisis (or watch) was hot on: it is cool when that one is."""
        self._unlearned: deque[tuple[MinuteBucket, Expectation]] = deque()
        """Quiet minutes waiting before the baseline learns them (see :meth:`_learn`)."""
        self._suspect_until = 0
        """Event time until which minutes are held back from learning."""
        self._text_held_until = 0
        """Event time until which the texts of learned minutes are kept out of the term background."""
        self._learning_late = False
        """The crisis now running (until it is resolved) has outlasted ``max_holdback_minutes`` and is being
        learned."""
        self._learned_mentions = 0
        """Mentions the baseline has learned since it (re)started: the warm-up's evidence."""
        self._dispersion: dict[int, _Learned] = {}
        """Per window length: the brand's own variance / mean of a window's negatives (squared Pearson
        residuals of its quiet windows)."""
        self._independence_usual: dict[int, _Learned] = {}
        """Per window length: the share of the brand's negatives that are usually independent voices."""
        self._new_learned()
        self._run = _Run()
        self._themeless_at: int | None = None
        """When the last "negatives without a topic" notice was sent (one an hour at most)."""
        self._themeless_streak = 0
        """Hot minutes in a row without a theme (``trigger_minutes`` of them make a notice)."""
        self.volume = VolumeDetector(cfg.volume())
        self._spike: int | None = None
        """Start of a volume spike waiting ``notice_delay_minutes`` to be told (None: none)."""
        self.last_minute: int | None = None

    def update(self, bucket: MinuteBucket) -> tuple[Reading, list[AlertEvent]]:
        """Feed the next minute (must be later than the previous one)."""
        cfg = self.config
        if self.last_minute is not None and bucket.minute <= self.last_minute:
            raise ValueError(f"minute {iso(bucket.minute)} is not after {iso(self.last_minute)}")
        if self.last_minute is not None and bucket.minute - self.last_minute > 60 * cfg.window_minutes:
            self._clear_window()  # a long gap: the window no longer describes "now"
        self.last_minute = bucket.minute
        events: list[AlertEvent] = []
        appeared = self._appeared_from_nothing(bucket)
        if appeared is not None:
            events.append(self._restart(bucket, *appeared))
        expected = self.baseline.expect(bucket.minute)
        self._append(bucket, expected)
        ready = self.ready
        quietish = self.lifecycle.phase in (Phase.QUIET, Phase.WATCH)
        if ready and bucket.minute // 60 % cfg.window_minutes == cfg.window_minutes - 1:
            self._block_end(quietish)
        found = self._scan(ready)
        signal = found.signal
        self._themeless_streak = self._themeless_streak + 1 if found.themeless else 0
        if self._themeless_streak >= cfg.trigger_minutes:
            events.extend(self._surge_notice(bucket.minute, found))
        if found.hot:
            span = next((w for w in self._spans if w >= found.span), self._spans[-1])
            self._crisis_span = max(self._crisis_span, span)
        # cool when the window the crisis was proven on is back near normal: a small brand's crisis, seen only
        # over 90 minutes, must not resolve while its 90-minute tail is still high, then page again
        span = self._crisis_span if self.lifecycle.active else cfg.window_minutes
        ref = signal if found.span == span and not found.hot else self._signal(span)
        cool = not found.hot and (ref.negative_ratio < cfg.resolve_ratio or ref.voices < cfg.min_negatives / 2)
        # Severity only matters when a crisis can start or grow.
        severity = self._severity(signal) if found.hot or self.lifecycle.phase is Phase.CRISIS else 0
        was_holding = self.lifecycle.holds_learning
        transitions = self.lifecycle.step(bucket.minute, found.hot, cool, severity, found.strong)
        if any(t.status is Status.TRIGGERED for t in transitions):
            self._run = _Run()
        if not self.lifecycle.active:
            self._crisis_span = cfg.window_minutes
        self._learn(bucket, expected, found.suspect, was_holding)
        reading = Reading(bucket, expected.total, expected.negative, signal, found.hot, self.lifecycle.phase,
                          expected.level, min(self._span, len(self._window)))
        events.extend(self._event(t, bucket.minute + 60, signal) for t in transitions)
        if cfg.volume_notices:
            events.extend(self._volume_notice(self.volume.update(bucket.minute, bucket.mentions)))
        return reading, events

    @property
    def ready(self) -> bool:
        """Warmed up by evidence: enough minutes and enough mentions learned."""
        cfg = self.config
        return self.baseline.minutes_seen >= cfg.warmup_minutes and self._learned_mentions >= cfg.warmup_mentions

    # --- warm-up and a brand that appears from nothing ---------------------------------------------------

    def _appeared_from_nothing(self, bucket: MinuteBucket) -> tuple[int, int] | None:
        """Still warming up after ``warmup_minutes`` (a handful of mentions in all that time), and the last
        window holds more mentions than the whole history: a new audience, a new query, a collection that
        changed — not a crisis measured against "the usual zero".  Returns (the window's first minute, its
        mentions), or None."""
        cfg = self.config
        if self.ready or self.baseline.minutes_seen < cfg.warmup_minutes:
            return None
        recent = self._recent(cfg.window_minutes - 1)
        mentions = bucket.mentions + sum(b.mentions for b, _ in recent)
        if mentions < max(cfg.min_negatives, self._learned_mentions + 1):
            return None
        return (recent[0][0].minute if recent else bucket.minute), mentions

    def _restart(self, bucket: MinuteBucket, start: int, mentions: int) -> AlertEvent:
        """Start the brand's baseline afresh from now, and say so in a notice."""
        cfg = self.config
        before = self._learned_mentions
        self.baseline = SeasonalBaseline(cfg.baseline)
        self._learned_mentions = 0
        self._unlearned.clear()
        self._new_learned()
        self._run = _Run()
        summary = (f"New activity for {self.brand}: {mentions} mentions in the last {cfg.window_minutes} min, "
                   f"where its whole history so far held {before}. crisiswatch is learning what is normal for it "
                   f"(about {cfg.warmup_minutes} min and {cfg.warmup_mentions} mentions) before it can tell a crisis; "
                   "if this is not expected (a new query, a new audience), check the brand's query.")
        return self._notice_event("new", start, bucket.minute + 60, summary,
                                  {"window_minutes": cfg.window_minutes, "mentions": mentions,
                                   "history_mentions": before})

    # --- notices -----------------------------------------------------------------------------------------

    def _volume_notice(self, v: VolumeReading) -> list[AlertEvent]:
        """A notice for a volume spike that stayed clear of any crisis for ``notice_delay_minutes``."""
        if v.alert:
            self._spike = v.at
        if self._spike is None:
            return []
        if self.lifecycle.active:
            self._spike = None  # the spike is (part of) a crisis: the crisis alert tells it
            return []
        if v.at - self._spike < 60 * self.config.notice_delay_minutes:
            return []
        started, self._spike = self._spike, None
        return [self._notice(started, v)]

    def _notice_event(self, kind: str, started: int, at: int, summary: str, stats: dict[str, object]) -> AlertEvent:
        """A one-off notice (severity info, no lifecycle): ``volume``, ``surge`` or ``new``."""
        nid = notice_id(self.brand, started, kind)
        return AlertEvent(id=f"{nid}:0:{Status.NOTICE.value}", crisis_id=nid, brand=self.brand, status=Status.NOTICE,
                          severity=Severity.INFO, at=at, started_at=started, summary=summary, stats=stats)

    def _window_stats(self, s: WindowSignal, span: int, at: int) -> dict[str, object]:
        return {"window_minutes": span, "window_start": iso(at - 60 * span), "window_end": iso(at), **s.to_stats()}

    def _notice(self, started: int, v: VolumeReading) -> AlertEvent:
        cfg = self.config
        s = self._signal(cfg.window_minutes)
        at = v.at + 60
        ratio = s.mentions / s.expected_mentions if s.expected_mentions > 0 else float("inf")
        tone = f"{s.mention_share:.0%} negative vs {s.mention_baseline_share:.0%} usually"
        if s.negatives >= 2 * s.voices and s.negatives >= cfg.min_negatives:
            why = f"{tone}, but from few accounts or copies of a few posts (a bot, copy-paste or repost burst?)"
        else:
            why = f"{tone} (a viral post or a news story?)"
        summary = (f"Volume notice for {self.brand}: {s.mentions} mentions in the last {cfg.window_minutes} min, "
                   f"{ratio:.1f}x the usual {s.expected_mentions:.0f}; {why}. Not a crisis so far: no action "
                   "needed, crisiswatch keeps watching the tone.")
        return self._notice_event("volume", started, at, summary,
                                  {**self._window_stats(s, cfg.window_minutes, at),
                                   "volume_p_value": float(f"{v.p_value:.3g}"), "volume_bar": round(v.peak_bar, 1)})

    def _surge_notice(self, minute: int, found: _Hot) -> list[AlertEvent]:
        """More negatives than usual, significantly, but no common topic: at most a notice, once an hour."""
        if self._themeless_at is not None and minute - self._themeless_at < 3600:
            return []
        self._themeless_at = minute
        s, span = found.signal, found.span
        at = minute + 60
        summary = (f"Negativity notice for {self.brand}: {s.negatives} negative mentions in the last {span} min, "
                   f"{s.negative_ratio:.1f}x the usual, but they share no common topic (ordinary complaints "
                   "adding up, or a mixed news day). Not a crisis so far: no action needed, crisiswatch keeps "
                   "watching.")
        return [self._notice_event("surge", minute, at, summary, self._window_stats(s, span, at))]

    # --- the tests ---------------------------------------------------------------------------------------

    def _scan(self, ready: bool) -> _Hot:
        """Test the windows, shortest first, then the sustained excess.

        The first hot window wins (a sudden crisis shows in ten minutes, a small brand's or a slow burn's only
        over longer ones, a bad day only block after block).  Otherwise the short window is reported, and
        *suspect* says whether anything shows an excess worth keeping out of the baseline for now.  Windows
        longer than the history so far are not tested.  While a crisis is resolving only the short window can
        make it flare up again: a long window still holding the crisis's tail must not re-open it.
        """
        cfg = self.config
        phase = self.lifecycle.phase
        short = self._signal(cfg.window_minutes)
        suspect = self._run.score >= cfg.cusum_threshold / 2 > 0
        spans = (cfg.window_minutes,) if phase is Phase.RESOLVING else self._spans
        found: tuple[WindowSignal, int, int] | None = None
        floor_ratio = min(_SUSPECT_RATIO, cfg.resolve_ratio)
        for span in spans:
            if span > len(self._window) and span != cfg.window_minutes:
                break
            if span != cfg.window_minutes:
                _, n, _, e = self._sums(span)
                if n < floor_ratio * max(e * self._usual_independence(span), cfg.min_expected_negatives):
                    continue  # the bound below, before a signal is built (most long windows, most minutes)
            s = short if span == cfg.window_minutes else self._signal(span)
            if s.voices < cfg.min_negatives / 2 or s.voices < floor_ratio * s.floor_voices:
                continue  # most windows most minutes: neither suspect nor possibly hot (both need these)
            suspect = suspect or self._suspect(s)
            if not ready or not self._could_be_hot(s, span):
                continue
            s = self._signal(span, self._independence(span))
            if self._hot(s, span):
                found = (s, span, span)
                break
        if found is None and ready and phase in (Phase.QUIET, Phase.WATCH):
            found = self._sustained_excess(short)
        if found is None:
            self._span = self._signal_minutes = cfg.window_minutes
            return _Hot(short, cfg.window_minutes, False, suspect)
        s, self._span, self._signal_minutes = found
        if phase in (Phase.QUIET, Phase.WATCH) and not self._themed(self._span):
            return _Hot(s, self._signal_minutes, False, True, themeless=True)
        strong = self._span == self._signal_minutes and s.p_volume <= cfg.strong_p_value
        return _Hot(s, self._signal_minutes, True, True, strong=strong)

    def _could_be_hot(self, s: WindowSignal, span: int) -> bool:
        """A cheap bound before voices are counted: counting authors once can only lower the negatives."""
        cfg = self.config
        if s.voices < cfg.min_negatives or s.negative_ratio < cfg.resolve_ratio:
            return False
        if (span != cfg.window_minutes and cfg.share_shift_log_odds > 0
                and logit(s.share) - logit(s.baseline_share) >= cfg.share_shift_log_odds):
            return True  # a share shift needs no volume (fewer voices can only lower the share)
        return s.negative_ratio >= cfg.min_ratio and s.p_volume <= cfg.p_value

    def _hot(self, s: WindowSignal, span: int) -> bool:
        if span == self.config.window_minutes:
            return self._excess(s, span)
        # a long window is hot only while its latest third is still above the usual: a crisis that is over
        # must be able to quiet down without waiting for its minutes to leave the 90-minute window
        return ((self._excess(s, span) or self._share_shift(s, span))
                and self._signal(span // 3).negative_ratio >= self.config.resolve_ratio)

    def _excess(self, s: WindowSignal, span: int) -> bool:
        cfg = self.config
        return (
            s.voices >= cfg.min_negatives
            and s.negative_ratio >= cfg.min_ratio
            and s.p_volume <= cfg.p_value
            and s.log_odds_lift >= cfg.min_log_odds
            and s.p_share <= (cfg.strong_share_p_value if s.p_volume <= cfg.strong_p_value else cfg.share_p_value)
            and self._sustained(span, s)
        )

    def _share_shift(self, s: WindowSignal, span: int) -> bool:
        """The mix turned negative without (much) extra volume: over a long window, the negative share is
        ``share_shift_log_odds`` above the usual share, very significantly (p_value / 10), with at least
        ``min_negatives`` voices and at least ``resolve_ratio`` times the usual."""
        cfg = self.config
        return (
            cfg.share_shift_log_odds > 0
            and s.voices >= cfg.min_negatives
            and s.negative_ratio >= cfg.resolve_ratio
            and logit(s.share) - logit(s.baseline_share) >= cfg.share_shift_log_odds
            and s.p_share <= cfg.p_value / 10
            and self._sustained(span, s, ratio=cfg.resolve_ratio)
        )

    def _sustained(self, span: int, s: WindowSignal, ratio: float | None = None) -> bool:
        """Is the excess still significant without the window's single worst minute?

        One noisy minute (a burst of a few seconds) must not carry a crisis on
        its own; a real one spreads over several minutes.
        """
        cfg = self.config
        window = self._recent(span)
        worst = max(window, key=lambda be: be[0].negative)
        scale = s.voices / s.negatives if s.negatives else 1.0
        rest = (sum(b.negative for b, _ in window) - worst[0].negative) * scale
        usual = s.expected_voices / s.expected_negatives if s.expected_negatives > 0 else 1.0
        rest_exp = max((sum(e.negative for _, e in window) - worst[1].negative) * usual, cfg.min_expected_negatives)
        if ratio is not None:  # the share-shift test: not the volume bar, only "more than one minute's worth"
            return rest / rest_exp >= ratio
        phi = s.dispersion
        return rest / rest_exp >= cfg.min_ratio and poisson_tail(rest / phi, rest_exp / phi) <= cfg.p_value

    def _sustained_excess(self, short: WindowSignal) -> tuple[WindowSignal, int, int] | None:
        """The CUSUM has crossed its threshold, the latest window is still above the usual, and the run's
        extra talk is negative: a bad day.  Returns the run's signal, the window its evidence is drawn from
        (the run's latest minutes, at most the longest window) and the run's length."""
        cfg = self.config
        run = self._run
        if cfg.cusum_threshold <= 0 or run.score < cfg.cusum_threshold or short.negative_ratio < cfg.resolve_ratio:
            return None
        span = min(run.minutes, len(self._window))
        s = window_signal(run.mentions, run.negatives, run.expected_mentions, run.expected_negatives,
                          dispersion=self._phi(cfg.window_minutes), share_dispersion=cfg.share_dispersion,
                          min_expected_negatives=cfg.min_expected_negatives,
                          min_baseline_share=cfg.min_baseline_share, independence=self._independence(span),
                          usual_independence=self._usual_independence(self._spans[-1]))
        # the run's own ratio must be nearer the alternative (cusum_ratio) than the usual (1)
        if (s.voices >= cfg.min_negatives and s.negative_ratio >= (1.0 + cfg.cusum_ratio) / 2
                and s.log_odds_lift >= cfg.min_log_odds and s.p_share <= cfg.share_p_value):
            return s, span, run.minutes
        return None

    def _block_end(self, quietish: bool) -> None:
        """At the end of each ``window_minutes`` block: advance the CUSUM and, from quiet windows, learn the
        brand's dispersion and independence for every window length that ends here."""
        cfg = self.config
        block = cfg.window_minutes
        if len(self._window) < block:
            return
        m, n, t, e = self._sums(block)
        if quietish and cfg.cusum_threshold > 0:
            # voices against usual voices, like the windows; one block can add at most a quarter of the
            # threshold, so a single burst (a noisy minute, a sudden crisis the windows judge) is not a bad day
            mu = max(e, cfg.min_expected_negatives / 10)
            rho = cfg.cusum_ratio
            usual = self._usual_independence(block)
            voices = n / usual  # the most the voices can be (all independent): count them unless the CUSUM
            if self._run.score > 0 or voices * math.log(rho) > (rho - 1.0) * mu:  # stays at zero either way
                voices = n * self._independence(block) / usual
            llr = min((voices * math.log(rho) - (rho - 1.0) * mu) / self._phi(block), cfg.cusum_threshold / 4)
            run = self._run
            score = max(0.0, run.score + llr)
            if score == 0.0:
                self._run = _Run()
            elif run.score == 0.0:
                self._run = _Run(score, m, n, t, e, block)
            else:
                self._run = _Run(score, run.mentions + m, run.negatives + n, run.expected_mentions + t,
                                 run.expected_negatives + e, run.minutes + block)
        if self.lifecycle.phase is not Phase.QUIET:
            return
        minute_index = self._window[-1][0].minute // 60
        for span in self._spans:
            if span > len(self._window) or minute_index % span != span - 1:
                continue
            _, n, _, e = self._sums(span)
            floor = max(e, cfg.min_expected_negatives)
            self._dispersion[span].add(min((n - e) ** 2 / floor, _RESIDUAL_CAP))
            samples = self._samples(span)
            if len(samples) >= 5:
                self._independence_usual[span].add(_voices(samples, cfg.repost_weight) / len(samples))

    def _phi(self, span: int) -> float:
        return self._dispersion[span].current

    def _usual_independence(self, span: int) -> float:
        return self._independence_usual[span].current

    def _new_learned(self, dispersion: dict | None = None, independence: dict | None = None) -> None:
        """Start (or restore, from ``{span: (weight, total)}``) the learned dispersion and independence."""
        cfg = self.config
        self._dispersion = {
            span: _Learned(span, cfg.dispersion, cfg.dispersion_prior_windows, 1.0, cfg.max_dispersion,
                           *(dispersion or {}).get(span, ())) for span in self._spans}
        self._independence_usual = {
            span: _Learned(span, 1.0, 5.0, 0.05, 1.0, *(independence or {}).get(span, ())) for span in self._spans}

    def _suspect(self, s: WindowSignal) -> bool:
        """More negatives than usual, or a more negative mix, at the 1% level: not proof of a crisis, but
        not a minute to learn "normal" from either."""
        cfg = self.config
        if s.voices < cfg.min_negatives / 2 or s.negative_ratio < _SUSPECT_RATIO:
            return False
        return s.p_volume <= cfg.suspect_p_value or s.p_share <= cfg.suspect_p_value

    def _themed(self, span: int) -> bool:
        """Do the window's negative mentions share a distinctive topic, said by several distinct texts?"""
        cfg = self.config
        docs, _ = documents((d.text for d in self._samples(span)), self._exclude)
        if not docs:
            return False
        need = max(cfg.theme_min_voices, cfg.theme_min_share * len(docs))
        if len(self.background) < _MIN_BACKGROUND:
            # too little ordinary talk learned to say what is distinctive: a term enough texts share will do
            return bool(_frequent_terms(docs, [1] * len(docs), 1, math.ceil(need)))
        return any(t["mentions"] >= need  # type: ignore[operator]
                   for t in distinctive_terms(docs, self.background, limit=cfg.terms))

    def _learn(self, bucket: MinuteBucket, expected: Expectation, suspect: bool, was_holding: bool) -> None:
        """Learn a quiet (or resolving) minute once nothing has looked suspect for ``window_minutes`` since it.

        A crisis's first minutes are quiet by definition (not hot yet); holding
        learning back by one window keeps them, too, out of the baseline.
        While any window looks suspect (an excess that is not, or not yet, a
        crisis: a slow burn building, a share shift before it is certain) the
        minutes wait, for at most ``max_holdback_minutes``; they are dropped if
        a crisis begins and learned if the suspicion fades.  The cap lets a
        lasting change of the brand's normal be learned in the end.

        Under watch or in crisis every minute is held too, and the minutes still
        held when it ends (watch falling back, crisis quieting down) are dropped,
        so a crisis is not learned as normal — unless it outlasts the cap: then
        all of it is learned, ``max_holdback_minutes`` late, including what is
        still held when it quiets down.  A brand whose normal changed for good
        (a new audience, a lasting controversy) would otherwise be stuck in one
        endless crisis with a frozen baseline, paged once and never again;
        learning it lets the crisis quiet down and resolve.  Dropping its last
        hours instead would leave those hours of the day at the old normal, and
        a new crisis would start there the next day, and drop them again.
        """
        cfg = self.config
        holding = self.lifecycle.holds_learning
        if holding != was_holding and not self._learning_late:
            # a crisis (watch) begins: the build-up held so far was part of it; or it quiets down (or flares
            # up again): what is still held is the crisis itself, dropped unless it is a lasting change
            self._unlearned.clear()
        if not self.lifecycle.active:
            self._learning_late = False
        self._unlearned.append((bucket, expected))
        if holding or (suspect and expected.level in ("day", "week")):
            # a suspect minute only counts against a baseline that knows this hour: before that, "suspect" is
            # mostly the daily rise the baseline has not seen yet, and holding it back would keep it from ever
            # being learned
            self._suspect_until = bucket.minute + 60 * cfg.window_minutes
        if holding or suspect:
            self._text_held_until = bucket.minute + 60 * cfg.window_minutes
        keep = cfg.max_holdback_minutes if bucket.minute < self._suspect_until else cfg.window_minutes
        while len(self._unlearned) > keep:
            old, exp = self._unlearned.popleft()
            self._learning_late = self._learning_late or holding
            self.baseline.learn(old.minute, old.mentions, old.negative, exp)
            self._learned_mentions += old.mentions
            if bucket.minute >= self._text_held_until:
                # the usual talk: not what was said while anything looked suspect (a crisis building
                # against a young baseline would otherwise become "usual" and have no theme)
                for d in old.samples:
                    self.background.add(d.text)

    @property
    def held_back_minutes(self) -> int:
        """Minutes waiting to be learned by the baseline: ``window_minutes`` normally, up to
        ``max_holdback_minutes`` while an excess is suspect or a crisis runs (see :meth:`_learn`)."""
        return len(self._unlearned)

    # --- the window ----------------------------------------------------------------------------------------

    def _recent(self, span: int | None = None) -> list[tuple[MinuteBucket, Expectation]]:
        """The minutes of a window: the last ``span``, by default the one alerts report (``_span``)."""
        n = len(self._window)
        k = min(span if span is not None else self._span, n)
        return list(islice(self._window, n - k, n))

    def _samples(self, span: int | None = None) -> list[MentionDigest]:
        return [d for b, _ in self._recent(span) for d in b.samples]

    def _clear_window(self) -> None:
        self._window.clear()
        self._cum.clear()
        self._cum.append((0, 0, 0.0, 0.0))

    def _append(self, bucket: MinuteBucket, expected: Expectation) -> None:
        """Add a minute to the window and to the running sums that make any window's sums O(1)."""
        self._window.append((bucket, expected))
        m, n, t, e = self._cum[-1]
        self._cum.append((m + bucket.mentions, n + bucket.negative, t + expected.total, e + expected.negative))

    def _sums(self, span: int) -> tuple[int, int, float, float]:
        """(mentions, negatives, expected mentions, expected negatives) of the last ``span`` minutes."""
        last, first = self._cum[-1], self._cum[-1 - min(span, len(self._window))]
        return (last[0] - first[0], last[1] - first[1], max(last[2] - first[2], 0.0), max(last[3] - first[3], 0.0))

    def _signal(self, span: int, independence: float = 1.0) -> WindowSignal:
        """The tests' numbers for the last ``span`` minutes; ``independence`` is the share of its negatives
        that are independent voices (1: all, an upper bound; see :meth:`_independence`)."""
        cfg = self.config
        m, n, t, e = self._sums(span)
        return window_signal(
            m, n, t, e,
            dispersion=self._phi(span),
            share_dispersion=cfg.share_dispersion,
            min_expected_negatives=cfg.min_expected_negatives,
            min_baseline_share=cfg.min_baseline_share,
            independence=independence,
            usual_independence=self._usual_independence(span),
        )

    def _independence(self, span: int) -> float:
        """The share of the window's sampled negative mentions that are independent voices (see
        :func:`_voices`), from the evidence sample of up to ``max_samples_per_minute`` a minute."""
        samples = self._samples(span)
        if not samples:
            return 1.0
        return _voices(samples, self.config.repost_weight) / len(samples)

    # --- alerts --------------------------------------------------------------------------------------------

    def _severity(self, s: WindowSignal) -> int:
        rank = 1 + sum(s.negative_ratio >= r for r in self.config.severity_ratios[1:])
        if self._negative_reach() >= self.config.high_reach:
            rank += 1
        return min(rank, Severity.CRITICAL.rank)

    def _negative_reach(self) -> int:
        return sum(b.negative_reach for b, _ in self._recent())

    def _event(self, t: Transition, at: int, s: WindowSignal) -> AlertEvent:
        cfg = self.config
        cid = crisis_id(self.brand, t.started_at)
        samples = self._samples()
        docs, copies = documents((d.text for d in samples), self._exclude)
        terms = distinctive_terms(docs, self.background, limit=cfg.terms, copies=copies)
        if not terms and len(self.background) < _MIN_BACKGROUND:
            terms = _frequent_terms(docs, copies, cfg.terms, cfg.theme_min_voices)
        sources: Counter[str] = Counter()
        for b, _ in self._recent():
            sources.update(dict(b.negative_sources))
        severity = Severity.from_rank(t.severity)
        stats: dict[str, object] = {
            **self._window_stats(s, self._signal_minutes, at),
            "negative_reach": self._negative_reach(),
            "duration_minutes": (at - t.started_at) // 60,
            "evidence_sample": len(samples),
        }
        return AlertEvent(
            id=f"{cid}:{t.seq}:{t.status.value}",
            crisis_id=cid,
            brand=self.brand,
            status=t.status,
            severity=severity,
            at=at,
            started_at=t.started_at,
            summary=self._summary(t, s, severity, terms, at),
            stats=stats,
            evidence={
                "terms": terms,
                "mentions": representative(samples, [str(t["term"]) for t in terms], exclude=self._exclude),
                "sources": dict(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
            playbook=self._playbook(t),
        )

    def _playbook(self, t: Transition) -> tuple[str, ...]:
        steps = playbook(self.config.response_minutes)
        if t.status is Status.RESOLVED:
            return ()
        if t.status is Status.UPDATED and t.note == "quieting":
            return steps[-1:]
        return steps

    def _summary(self, t: Transition, s: WindowSignal, severity: Severity, terms: list[dict], at: int) -> str:
        w = self._signal_minutes
        voices = f" from about {s.voices:.0f} independent voices" if s.voices < 0.9 * s.negatives else ""
        numbers = (
            f"{s.negatives} negative mentions in the last {w} min{voices}, {s.negative_ratio:.1f}x the usual "
            f"{s.expected_voices:.0f}; {s.mention_share:.0%} negative vs {s.mention_baseline_share:.0%} usually"
        )
        about = ", ".join(f'"{x["term"]}"' for x in terms[:3])
        about = f" People are talking about {about}." if about else ""
        act = f" Respond within {self.config.response_minutes} min."
        minutes = (at - t.started_at) // 60
        if t.status is Status.TRIGGERED:
            return f"Possible crisis for {self.brand} ({severity.value}): {numbers}.{about}{act}"
        if t.status is Status.ESCALATED:
            return f"Crisis for {self.brand} is growing ({severity.value}): {numbers}.{about}{act}"
        if t.status is Status.UPDATED and t.note == "flare":
            return f"Crisis for {self.brand} is flaring up again: {numbers}.{about}{act}"
        if t.status is Status.UPDATED:
            return (f"Crisis for {self.brand} is quieting down after {minutes} min: {numbers}. "
                    f"Keep acknowledging and answering until it is resolved.")
        return (f"Crisis for {self.brand} resolved after {minutes} min: back to normal "
                f"({s.negatives} negative mentions in the last {w} min vs {s.expected_negatives:.0f} usually).")

    # --- state -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        return {
            "version": STATE_VERSION,
            "brand": self.brand,
            "last_minute": self.last_minute,
            "baseline": self.baseline.to_state(),
            "lifecycle": self.lifecycle.to_state(),
            "background": self.background.to_state(),
            "window": [_bucket_state(b, e) for b, e in self._window],
            "unlearned": [_bucket_state(b, e) for b, e in self._unlearned],
            "suspect_until": self._suspect_until,
            "text_held_until": self._text_held_until,
            "learning_late": self._learning_late,
            "volume": self.volume.to_state(),
            "spike": self._spike,
            "learned_mentions": self._learned_mentions,
            "dispersion": {str(k): [v.weight, v.total] for k, v in self._dispersion.items()},
            "independence": {str(k): [v.weight, v.total] for k, v in self._independence_usual.items()},
            "run": list(self._run),
            "themeless_at": self._themeless_at,
            "themeless_streak": self._themeless_streak,
            "crisis_span": self._crisis_span,
        }

    @classmethod
    def from_state(cls, state: dict, config: DetectorConfig | None = None) -> CrisisDetector:
        """Restore a detector; a version-2 state (before the learned dispersion, voices and the CUSUM) keeps
        its baseline and history, and its brand counts as warmed up by evidence."""
        version = state.get("version")
        if version not in (2, STATE_VERSION):
            raise ValueError(f"detector state version {version!r} is not {STATE_VERSION} (or 2)")
        det = cls(state["brand"], config)
        det.last_minute = state["last_minute"]
        det.baseline.load(state["baseline"])
        det.lifecycle.load(state["lifecycle"])
        det.background.load(state["background"])
        for w in state["window"]:
            det._append(*_bucket_from_state(det.brand, w))
        det._unlearned.extend(_bucket_from_state(det.brand, w) for w in state["unlearned"])
        det._suspect_until = int(state["suspect_until"])
        det._learning_late = bool(state.get("learning_late", False))  # added later: absent in older states
        if "volume" in state:  # added to version 2 later: a state without it starts the volume detector afresh
            det.volume = VolumeDetector.from_state(state["volume"], det.config.volume())
            det._spike = state["spike"]
        if version == 2:
            det._learned_mentions = det.config.warmup_mentions if det.baseline.minutes_seen else 0
            return det
        det._learned_mentions = int(state["learned_mentions"])
        det._text_held_until = int(state["text_held_until"])
        # a window length no longer configured is forgotten; a new one starts from its prior
        det._new_learned({int(k): (float(w), float(t)) for k, (w, t) in state["dispersion"].items()},
                         {int(k): (float(w), float(t)) for k, (w, t) in state["independence"].items()})
        det._run = _Run(float(state["run"][0]), *(int(x) if i in (0, 1, 4) else float(x)
                                                  for i, x in enumerate(state["run"][1:])))
        det._themeless_at = state["themeless_at"]
        det._themeless_streak = int(state["themeless_streak"])
        det._crisis_span = int(state["crisis_span"]) if int(state["crisis_span"]) in det._spans else det._spans[0]
        return det


def _frequent_terms(docs: list[set[str]], copies: list[int], limit: int, min_docs: int) -> list[dict[str, object]]:
    """The terms most distinct texts use (at least ``min_docs``), in the shape of
    :func:`~detectors.explain.distinctive_terms` (``z`` 0: nothing to compare with)."""
    counts = Counter(term for doc in docs for term in doc)
    total = sum(copies)
    out: list[dict[str, object]] = []
    for term, n in sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0])):
        if n < min_docs or len(out) == limit:
            break
        if any(term in str(t["term"]).split(" ") for t in out):
            continue  # a word of a phrase already chosen
        mentions = sum(c for doc, c in zip(docs, copies, strict=True) if term in doc)
        out.append({"term": term, "mentions": mentions, "share": round(mentions / total, 3), "z": 0.0})
    return out


_text_key = lru_cache(maxsize=1 << 16)(text_key)
"""A sample stays in the windows for up to 90 minutes and is counted every minute a window may be hot: its key
is computed once (this was a fifth of ``crisiswatch detect``'s time, benchmarks/throughput.py)."""


def _voices(samples: list[MentionDigest], repost_weight: float) -> float:
    """Independent voices among negative mentions.

    A crisis is many people upset; a cascade of retweets of one post, a paste or a bot burst is one voice
    repeated.  Near-identical texts (:func:`~detectors.explain.text_key`: a leading "RT @x:", tags and links
    ignored) count as one voice plus ``repost_weight`` for each further copy, whoever posted them; the other
    mentions count each author once (a mention without an author counts as its own).
    """
    keys = [_text_key(d.text) or f"id:{d.id}" for d in samples]
    copies = Counter(keys)
    voices = sum(1.0 + repost_weight * (n - 1) for n in copies.values() if n > 1)
    authors = {d.author or f"id:{d.id}" for d, key in zip(samples, keys, strict=True) if copies[key] == 1}
    return voices + len(authors)


def _bucket_state(b: MinuteBucket, e: Expectation) -> dict[str, object]:
    """What the detector keeps of a bucket: counts it sums, evidence, and its expectation."""
    return {
        "minute": b.minute, "mentions": b.mentions, "negative": b.negative,
        "negative_reach": b.negative_reach, "negative_sources": [list(x) for x in b.negative_sources],
        "samples": [d.to_dict() for d in b.samples],
        "expected": [e.total, e.negative, e.level],
    }


def _bucket_from_state(brand: str, w: dict) -> tuple[MinuteBucket, Expectation]:
    bucket = MinuteBucket(
        brand=brand, minute=w["minute"], mentions=w["mentions"], negative=w["negative"],
        negative_reach=w["negative_reach"],
        negative_sources=tuple((s, int(n)) for s, n in w["negative_sources"]),
        samples=tuple(MentionDigest.from_dict(d) for d in w["samples"]),
    )
    total, negative, level = w["expected"]
    return bucket, Expectation(float(total), float(negative), level)
