"""The crisis detector for one brand: feed minutes, get alert events.

Online-learning style API::

    det = CrisisDetector("acme", DetectorConfig())
    for bucket in buckets:           # consecutive minutes, event time
        reading, events = det.update(bucket)
    state = det.to_state()           # JSON-compatible
    det2 = CrisisDetector.from_state(state, DetectorConfig())

A minute is *hot* when, over the last ``window_minutes``, negative mentions
exceed the baseline significantly in volume **and** in share (so a positive
viral spike or a neutral news spike is not a crisis), with at least
``min_negatives`` of them and ``min_negative_ratio`` times the usual number.
It is *cool* when the ratio falls below ``resolve_ratio``.  The
:class:`~detectors.lifecycle.Lifecycle` turns hot/cool minutes into
transitions; this module turns transitions into explained alert events.

Pure and deterministic: no clock, no I/O, no randomness.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
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
from .signals import WindowSignal, poisson_tail, window_signal
from .volume import VolumeConfig, VolumeDetector, VolumeReading

STATE_VERSION = 2
_SUSPECT_RATIO = 1.25
"""A window must hold at least this many times the usual negatives to be suspect (and significant): a
lasting 1.4x is worth holding back, which the resolve ratio (1.5) would miss."""


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings (the ``[detector]`` table of the config file)."""

    window_minutes: int = 10
    long_windows_minutes: tuple[int, ...] = (30, 90)
    """Longer windows tested with the same rules when the short one is not hot (() = none): a small brand's
    crisis adds a handful of complaints an hour, too few for ten minutes to be significant, and a slow burn
    builds over hours."""
    share_shift_lift: float = 0.15
    """Over a long window, a negative share this far above the usual share is hot without the volume
    tests (a share shift: the mix turns negative, the volume barely moves); 0 = off."""
    suspect_p_value: float = 0.01
    """A window this significant (in volume or share) is *suspect*: its minutes are held back from the
    baseline, for at most ``max_holdback_minutes``, so a crisis that builds slowly is not learned as normal
    before it is certain."""
    max_holdback_minutes: int = 360
    trigger_minutes: int = 3
    trigger_window_minutes: int = 5
    """``trigger_minutes`` hot minutes within this many start a crisis (3 of 5: a crisis that flickers
    around the threshold still starts; 18 of the benchmark's misses were hot minutes never 3 in a row)."""
    strong_p_value: float = 1e-6
    """A hot window whose volume test is this significant starts the crisis at once, without waiting for
    ``trigger_minutes`` (0 = never): evidence a thousand times beyond the hot bar is not a flicker."""
    quiet_minutes: int = 30
    min_negatives: int = 10
    min_negative_ratio: float = 3.0
    min_share_lift: float = 0.20
    """The extra mentions must be this much more negative than the usual share (:attr:`WindowSignal.
    excess_share`): a burst of ordinary chatter is of the usual mix; a crisis's extra talk is complaints."""
    p_value: float = 1e-3
    share_p_value: float = 0.01
    """The share test's level.  The volume test (at ``p_value``) is what keeps chance spikes out; the share
    test only has to show the excess is negative rather than a spike of the usual mix, and for a brand
    whose usual share is already 0.4-0.55 (an airline) a real crisis moves it only 0.15-0.25 (benchmarks/
    crisis.py: at 0.001 it missed most of those)."""
    dispersion: float = 2.0
    """Variance / mean of negative counts (quasi-Poisson volume test): social counts are bursty."""
    share_dispersion: float = 1.0
    """The same for the negative share (binomial test).  The share is a ratio of two counts that burst
    together, so it is far less overdispersed; at 2 the test missed most real crises of brands whose usual
    share is 0.3-0.5 (benchmarks/crisis.py: 25 negatives of 36 against a usual 0.33 failed)."""
    min_expected_negatives: float = 1.0
    min_baseline_share: float = 0.05
    resolve_ratio: float = 1.5
    severity_ratios: tuple[float, float, float] = (3.0, 6.0, 12.0)
    high_reach: int = 1_000_000
    warmup_minutes: int = 120
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

    def volume(self) -> VolumeConfig:
        """The volume detector's settings, shared with ``crisiswatch nab``: the same window, significance
        level, warm-up and cold-start ratio as the crisis tests; minute buckets."""
        return VolumeConfig(bucket_seconds=60, window_minutes=self.window_minutes, p_value=self.p_value,
                            warmup_hours=self.warmup_minutes / 60, cold_start_ratio=self.min_negative_ratio)


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
            "negative_ratio": round(w.negative_ratio, 3),
            "negative_share": round(w.share, 4),
            "baseline_share": round(w.baseline_share, 4),
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
        self.baseline = SeasonalBaseline(self.config.baseline)
        self.lifecycle = Lifecycle(self.config.trigger_minutes, self.config.quiet_minutes,
                                   max(0, self.config.trigger_window_minutes - self.config.trigger_minutes))
        self._exclude = brand_words(brand)
        self.background = TermBackground(self.config.background_mentions, self._exclude)
        self._spans = tuple(sorted({self.config.window_minutes, *self.config.long_windows_minutes}))
        self._window: deque[tuple[MinuteBucket, Expectation]] = deque(maxlen=self._spans[-1])
        self._cum: deque[tuple[int, int, float, float]] = deque(maxlen=self._spans[-1] + 1)
        """Running sums of (mentions, negatives, expected mentions, expected negatives) before each minute
        of the window and after the last; not saved (rebuilt from the window)."""
        self._clear_window()
        self._span = self.config.window_minutes
        """How many of the latest minutes make "the window" now: the short one, or the long one when only
        the long one is hot."""
        self._unlearned: deque[tuple[MinuteBucket, Expectation]] = deque()
        """Quiet minutes waiting before the baseline learns them (see :meth:`_learn`)."""
        self._suspect_until = 0
        """Event time until which minutes are held back from learning."""
        self._learning_late = False
        """The crisis now running (until it is resolved) has outlasted ``max_holdback_minutes`` and is being
        learned."""
        self.volume = VolumeDetector(self.config.volume())
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
        expected = self.baseline.expect(bucket.minute)
        self._append(bucket, expected)
        ready = self.baseline.minutes_seen >= cfg.warmup_minutes
        signal, hot, suspect = self._scan(ready)
        cool = not hot and (signal.negative_ratio < cfg.resolve_ratio or signal.negatives < cfg.min_negatives / 2)
        # Severity only matters when a crisis can start or grow.
        severity = self._severity(signal) if hot or self.lifecycle.phase is Phase.CRISIS else 0
        strong = hot and signal.p_volume <= cfg.strong_p_value
        was_holding = self.lifecycle.holds_learning
        transitions = self.lifecycle.step(bucket.minute, hot, cool, severity, strong)
        self._learn(bucket, expected, suspect, was_holding)
        reading = Reading(bucket, expected.total, expected.negative, signal, hot, self.lifecycle.phase,
                          expected.level, min(self._span, len(self._window)))
        events = [self._event(t, bucket.minute + 60, signal) for t in transitions]
        if cfg.volume_notices:
            events.extend(self._volume_notice(self.volume.update(bucket.minute, bucket.mentions)))
        return reading, events

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

    def _notice(self, started: int, v: VolumeReading) -> AlertEvent:
        cfg = self.config
        s = self._signal(cfg.window_minutes)
        at = v.at + 60
        nid = notice_id(self.brand, started)
        ratio = s.mentions / s.expected_mentions if s.expected_mentions > 0 else float("inf")
        tone = f"{s.share:.0%} negative vs {s.baseline_share:.0%} usually"
        if s.share >= s.baseline_share + cfg.min_share_lift:
            why = f"mostly negative ({tone}) but from few accounts or copies of a few texts (a bot or copy-paste burst?)"
        else:
            why = f"{tone} (a viral post or a news story?)"
        summary = (f"Volume notice for {self.brand}: {s.mentions} mentions in the last {cfg.window_minutes} min, "
                   f"{ratio:.1f}x the usual {s.expected_mentions:.0f}; {why}. Not a crisis so far: no action "
                   "needed, crisiswatch keeps watching the tone.")
        return AlertEvent(
            id=f"{nid}:0:{Status.NOTICE.value}",
            crisis_id=nid,
            brand=self.brand,
            status=Status.NOTICE,
            severity=Severity.INFO,
            at=at,
            started_at=started,
            summary=summary,
            stats={"window_minutes": cfg.window_minutes, "window_start": iso(at - 60 * cfg.window_minutes),
                   "window_end": iso(at), **s.to_stats(), "volume_p_value": float(f"{v.p_value:.3g}"),
                   "volume_bar": round(v.peak_bar, 1)},
        )

    def _scan(self, ready: bool) -> tuple[WindowSignal, bool, bool]:
        """Test the windows, shortest first: (the signal to report, hot, suspect).

        The first hot window wins (a sudden crisis shows in ten minutes, a
        small brand's or a slow burn's only over longer ones).  Otherwise the
        short window is reported, and *suspect* says whether any window shows
        an excess worth keeping out of the baseline for now.  Windows longer
        than the history so far are not tested.
        """
        cfg = self.config
        short = self._signal(cfg.window_minutes)
        suspect = False
        for span in self._spans:
            if span > len(self._window) and span != cfg.window_minutes:
                break
            s = short if span == cfg.window_minutes else self._signal(span)
            if ready and self._hot(s, span):
                # counted with each author (and near-identical text) once, is it still hot?
                s = s._replace(negatives=round(s.negatives * self._independence(span)))
                if self._hot(s, span):
                    self._span = span
                    return s, True, True
            suspect = suspect or self._suspect(s)
        self._span = cfg.window_minutes
        return short, False, suspect

    def _hot(self, s: WindowSignal, span: int) -> bool:
        if span == self.config.window_minutes:
            return self._is_hot(s, span)
        # a long window is hot only while its latest third is still above the usual: a crisis that is over
        # must be able to quiet down without waiting for its minutes to leave the 90-minute window
        return ((self._is_hot(s, span) or self._share_shift(s, span))
                and self._signal(span // 3).negative_ratio >= self.config.resolve_ratio)

    def _suspect(self, s: WindowSignal) -> bool:
        """More negatives than usual, or a more negative mix, at the 1% level: not proof of a crisis, but
        not a minute to learn "normal" from either."""
        cfg = self.config
        if s.negatives < cfg.min_negatives / 2 or s.negative_ratio < _SUSPECT_RATIO:
            return False
        return s.p_volume <= cfg.suspect_p_value or s.p_share <= cfg.suspect_p_value

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
        keep = cfg.max_holdback_minutes if bucket.minute < self._suspect_until else cfg.window_minutes
        while len(self._unlearned) > keep:
            old, exp = self._unlearned.popleft()
            self._learning_late = self._learning_late or holding
            self.baseline.learn(old.minute, old.mentions, old.negative, exp)
            for d in old.samples:
                self.background.add(d.text)

    @property
    def held_back_minutes(self) -> int:
        """Minutes waiting to be learned by the baseline: ``window_minutes`` normally, up to
        ``max_holdback_minutes`` while an excess is suspect or a crisis runs (see :meth:`_learn`)."""
        return len(self._unlearned)

    def _recent(self, span: int | None = None) -> list[tuple[MinuteBucket, Expectation]]:
        """The minutes of a window: the last ``span``, by default the one alerts report (``_span``)."""
        n = len(self._window)
        return list(self._window)[max(0, n - (span or self._span)):]

    def _clear_window(self) -> None:
        self._window.clear()
        self._cum.clear()
        self._cum.append((0, 0, 0.0, 0.0))

    def _append(self, bucket: MinuteBucket, expected: Expectation) -> None:
        """Add a minute to the window and to the running sums that make any window's sums O(1)."""
        self._window.append((bucket, expected))
        m, n, t, e = self._cum[-1]
        self._cum.append((m + bucket.mentions, n + bucket.negative, t + expected.total, e + expected.negative))

    def _signal(self, span: int) -> WindowSignal:
        """The tests' numbers for the last ``span`` minutes (all mentions counted; see :meth:`_independence`)."""
        cfg = self.config
        last, first = self._cum[-1], self._cum[-1 - min(span, len(self._window))]
        return window_signal(
            last[0] - first[0], last[1] - first[1], max(last[2] - first[2], 0.0), max(last[3] - first[3], 0.0),
            dispersion=cfg.dispersion,
            share_dispersion=cfg.share_dispersion,
            min_expected_negatives=cfg.min_expected_negatives,
            min_baseline_share=cfg.min_baseline_share,
        )

    def _independence(self, span: int) -> float:
        """The share of the window's sampled negative mentions that are independent voices.

        A crisis is many people upset; a bot or copy-paste burst is a few accounts posting a lot.  The
        tests count an author once per window (negatives x this factor, from the evidence sample of up to
        ``max_samples_per_minute`` a minute); a mention without an author counts as its own.  When the
        accounts repeat themselves (1.5 or more posts an author), near-identical texts
        (:func:`~detectors.explain.text_key`) count once too: twelve accounts pasting three texts are three
        voices, not twelve.  Real crises lose little (most people post once in ten minutes, in their own
        words; a retweet cascade is many authors, so its copies still count).
        """
        samples = [d for b, _ in self._recent(span) for d in b.samples]
        if not samples:
            return 1.0
        voices = len({d.author or f"id:{d.id}" for d in samples})
        if len(samples) >= 1.5 * voices:
            voices = min(voices, len({text_key(d.text) for d in samples}))
        return voices / len(samples)

    def _share_shift(self, s: WindowSignal, span: int) -> bool:
        """The mix turned negative without (much) extra volume: over the long window, the negative share is
        ``share_shift_lift`` above the usual share, very significantly (p_value / 10), with at least
        ``min_negatives`` negatives (authors counted once) and at least ``resolve_ratio`` times the usual."""
        cfg = self.config
        return (
            cfg.share_shift_lift > 0
            and s.negatives >= cfg.min_negatives
            and s.negative_ratio >= cfg.resolve_ratio
            and s.share >= s.baseline_share + cfg.share_shift_lift
            and s.p_share <= cfg.p_value / 10
            and self._sustained(span, ratio=cfg.resolve_ratio)
        )

    def _is_hot(self, s: WindowSignal, span: int) -> bool:
        cfg = self.config
        return (
            s.negatives >= cfg.min_negatives
            and s.negative_ratio >= cfg.min_negative_ratio
            and s.p_volume <= cfg.p_value
            and s.excess_share >= s.baseline_share + cfg.min_share_lift
            and s.p_share <= cfg.share_p_value
            and self._sustained(span)
        )

    def _sustained(self, span: int, ratio: float | None = None) -> bool:
        """Is the excess still significant without the window's single worst minute?

        One noisy minute (a burst of a few seconds) must not carry a crisis on
        its own; a real one spreads over several minutes.
        """
        cfg = self.config
        window = self._recent(span)
        worst = max(window, key=lambda be: be[0].negative)
        rest_neg = sum(b.negative for b, _ in window) - worst[0].negative
        rest_exp = max(sum(e.negative for _, e in window) - worst[1].negative, cfg.min_expected_negatives)
        phi = max(cfg.dispersion, 1.0)
        if ratio is not None:  # the share-shift test: not the volume bar, only "more than one minute's worth"
            return rest_neg / rest_exp >= ratio
        return rest_neg / rest_exp >= cfg.min_negative_ratio and poisson_tail(rest_neg / phi, rest_exp / phi) <= cfg.p_value

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
        samples = [d for b, _ in self._recent() for d in b.samples]
        docs, copies = documents((d.text for d in samples), self._exclude)
        terms = distinctive_terms(docs, self.background, limit=cfg.terms, copies=copies)
        sources: Counter[str] = Counter()
        for b, _ in self._recent():
            sources.update(dict(b.negative_sources))
        severity = Severity.from_rank(t.severity)
        stats: dict[str, object] = {
            "window_minutes": len(self._recent()),
            "window_start": iso(self._recent()[0][0].minute),
            "window_end": iso(at),
            **s.to_stats(),
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
        w = len(self._recent())
        numbers = (
            f"{s.negatives} negative mentions in the last {w} min, {s.negative_ratio:.1f}x the usual "
            f"{s.expected_negatives:.0f}; {s.share:.0%} negative vs {s.baseline_share:.0%} usually"
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
            "learning_late": self._learning_late,
            "volume": self.volume.to_state(),
            "spike": self._spike,
        }

    @classmethod
    def from_state(cls, state: dict, config: DetectorConfig | None = None) -> CrisisDetector:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"detector state version {state.get('version')!r} is not {STATE_VERSION}")
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
        return det


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
