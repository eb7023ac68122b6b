"""Significance of an excess of negative mentions over the baseline.

Two questions, both asked of a sliding window of minutes:

* **volume** — are there more negative voices than the baseline expects?
  One-sided Poisson tail ``P(X >= k | mu)``.
* **share** — is the extra talk more negative than the usual mix?  One-sided
  binomial tail ``P(X >= k | n, p0)``, and an effect size on the log-odds
  scale (:attr:`WindowSignal.log_odds_lift`), which means the same at a usual
  share of 10% and of 85%: points of share do not (at 80% usual, +20 points is
  impossible).

The volume test and the lift count *voices*, not mentions (see
:meth:`~detectors.detector.CrisisDetector._independence`): the negatives times
the share of them that are independent (an author once, a cascade of copies of
one post as one voice and a little), and the baseline's negatives times the
share that usually is — like with like.  The binomial share test counts
mentions on both sides (:attr:`WindowSignal.p_share`).

Social counts are overdispersed (bursty), so both tests are quasi-likelihood
versions: counts are divided by a ``dispersion`` factor (variance / mean, learned
per brand by the detector) before the exact tail is taken, which widens the null
in proportion.  Tails use the regularised incomplete gamma and beta functions,
which accept the resulting non-integer counts.  Count-aware tests behave for a
brand with three mentions an hour and for one with thousands a minute alike,
where z-scores of tiny counts do not.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scipy.special import betainc, gammainc


def poisson_tail(k: float, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu), continuous in k (k <= 0 gives 1)."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    return float(gammainc(k, mu))


def binomial_tail(k: float, n: float, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), continuous in k and n."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return float(betainc(k, n - k + 1, p))


def logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


class WindowSignal(NamedTuple):
    """The numbers the lifecycle decides on, for the window ending at one minute.

    ``negatives`` and ``mentions`` are raw counts (what people see); the tests use ``voices`` against
    ``expected_voices`` (equal to the raw counts when every negative mention is its own voice)."""

    mentions: int
    negatives: int
    expected_mentions: float
    expected_negatives: float
    voices: float
    expected_voices: float
    floor_voices: float
    """The expected voices after the floor (what the volume test uses)."""
    dispersion: float
    share_dispersion: float = 1.0
    min_baseline_share: float = 0.0

    @property
    def negative_ratio(self) -> float:
        return self.voices / self.floor_voices

    @property
    def volume_ratio(self) -> float:
        return self.mentions / max(self.expected_mentions, self.floor_voices)

    @property
    def talk(self) -> float:
        """Mentions on the voice scale: the non-negative ones plus the negative voices."""
        return self.mentions - self.negatives + self.voices

    @property
    def expected_talk(self) -> float:
        return max(self.expected_mentions - self.expected_negatives, 0.0) + self.expected_voices

    @property
    def share(self) -> float:
        """The negative share of the talk (voices)."""
        return self.voices / self.talk if self.talk > 0 else 0.0

    @property
    def baseline_share(self) -> float:
        share = self.expected_voices / self.expected_talk if self.expected_talk > 0 else 0.0
        return min(max(share, self.min_baseline_share), 0.99)

    @property
    def p_volume(self) -> float:
        """One-sided volume test (computed on demand: most minutes never need it)."""
        phi = self.dispersion
        return poisson_tail(self.voices / phi, self.floor_voices / phi)

    @property
    def excess_share(self) -> float:
        """The negative share of the talk *beyond* the usual volume: what the extra talk is made of.

        A burst of ordinary chatter adds talk of the usual mix; a crisis adds complaints.  Where there is
        no extra volume, negatives replaced other talk: 1.0."""
        extra = self.talk - self.expected_talk
        if extra <= 0:
            return 1.0
        return min(max((self.voices - self.expected_voices) / extra, 0.0), 1.0)

    @property
    def log_odds_lift(self) -> float:
        """How much more negative the extra talk is than the usual mix, in log-odds (0 = the usual mix,
        0.7 = twice the odds: 10% -> 18%, 50% -> 67%, 80% -> 89%)."""
        return logit(self.excess_share) - logit(self.baseline_share)

    @property
    def p_share(self) -> float:
        """One-sided binomial test of the negative share of all *mentions* against the usual share of mentions.

        The mix is a question about mentions, so this one test counts every mention: on the voice scale a
        brand with regular complainers lost a third of its power (benchmarks/crisis.py profile 2: two more
        crises caught of 135, no more false alarms).  Copies cannot pass for a crisis through it: the volume
        test and the log-odds lift count voices."""
        phi = self.share_dispersion
        return binomial_tail(self.negatives / phi, self.mentions / phi, self.mention_baseline_share)

    @property
    def mention_share(self) -> float:
        """The negative share of the mentions (what alerts show: negatives / mentions)."""
        return self.negatives / self.mentions if self.mentions else 0.0

    @property
    def mention_baseline_share(self) -> float:
        share = self.expected_negatives / self.expected_mentions if self.expected_mentions > 0 else 0.0
        return min(max(share, self.min_baseline_share), 0.99)

    def to_stats(self) -> dict[str, float | int]:
        return {
            "mentions": self.mentions,
            "negatives": self.negatives,
            "negative_voices": round(self.voices, 1),
            "negative_share": round(self.mention_share, 4),
            "baseline_mentions": round(self.expected_mentions, 2),
            "baseline_negatives": round(self.expected_negatives, 2),
            "baseline_voices": round(self.expected_voices, 2),
            "baseline_negative_share": round(self.mention_baseline_share, 4),
            "volume_ratio": round(self.volume_ratio, 2),
            "negative_ratio": round(self.negative_ratio, 2),
            "log_odds_lift": round(self.log_odds_lift, 2),
            "dispersion": round(self.dispersion, 2),
            "p_volume": float(f"{self.p_volume:.3g}"),
            "p_share": float(f"{self.p_share:.3g}"),
        }


def window_signal(
    mentions: int,
    negatives: int,
    expected_mentions: float,
    expected_negatives: float,
    *,
    dispersion: float,
    min_expected_negatives: float,
    min_baseline_share: float,
    share_dispersion: float = 1.0,
    independence: float = 1.0,
    usual_independence: float = 1.0,
) -> WindowSignal:
    """Test a window's counts against what the baseline expected for it.

    ``independence`` is the share of the window's negatives that are independent voices,
    ``usual_independence`` the share the brand's negatives usually have.  ``min_expected_negatives``
    floors the expectation so that a quiet brand's first handful of complaints is not "infinitely"
    surprising; ``min_baseline_share`` does the same for the share.
    """
    expected_voices = expected_negatives * usual_independence
    return WindowSignal(
        mentions=mentions,
        negatives=negatives,
        expected_mentions=expected_mentions,
        expected_negatives=expected_negatives,
        voices=negatives * independence,
        expected_voices=expected_voices,
        floor_voices=max(expected_voices, min_expected_negatives),
        dispersion=max(dispersion, 1.0),
        share_dispersion=max(share_dispersion, 1.0),
        min_baseline_share=min_baseline_share,
    )
