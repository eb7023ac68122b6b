"""Significance of an excess of negative mentions over the baseline.

Two questions, both asked of a sliding window of minutes:

* **volume** — are there more negative mentions than the baseline expects?
  One-sided Poisson tail ``P(X >= k | mu)``.
* **share** — is a larger part of the talk negative than usual?  One-sided
  binomial tail ``P(X >= k | n, p0)``.

Social counts are overdispersed (bursty), so both tests are quasi-likelihood
versions: counts are divided by a ``dispersion`` factor (variance / mean)
before the exact tail is taken, which widens the null in proportion.  Tails
use the regularised incomplete gamma and beta functions, which accept the
resulting non-integer counts.  Count-aware tests behave for a brand with three
mentions an hour and for one with thousands a minute alike, where z-scores of
tiny counts do not.
"""

from __future__ import annotations

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


class WindowSignal(NamedTuple):
    """The numbers the lifecycle decides on, for the window ending at one minute."""

    mentions: int
    negatives: int
    expected_mentions: float
    expected_negatives: float
    negative_ratio: float
    volume_ratio: float
    share: float
    baseline_share: float
    floor_negatives: float
    """The expected negatives after the floor (what the volume test uses)."""
    dispersion: float
    share_dispersion: float = 1.0

    @property
    def p_volume(self) -> float:
        """One-sided volume test (computed on demand: most minutes never need it)."""
        phi = self.dispersion
        return poisson_tail(self.negatives / phi, self.floor_negatives / phi)

    @property
    def excess_share(self) -> float:
        """The negative share of the mentions *beyond* the usual volume: what the extra talk is made of.

        A burst of ordinary chatter adds talk of the usual mix; a crisis adds complaints.  Where there is
        no extra volume, negatives replaced other talk: 1.0."""
        extra = self.mentions - self.expected_mentions
        if extra <= 0:
            return 1.0
        return min(max((self.negatives - self.expected_negatives) / extra, 0.0), 1.0)

    @property
    def p_share(self) -> float:
        phi = self.share_dispersion
        return binomial_tail(self.negatives / phi, self.mentions / phi, self.baseline_share)

    def to_stats(self) -> dict[str, float | int]:
        return {
            "mentions": self.mentions,
            "negatives": self.negatives,
            "negative_share": round(self.share, 4),
            "baseline_mentions": round(self.expected_mentions, 2),
            "baseline_negatives": round(self.expected_negatives, 2),
            "baseline_negative_share": round(self.baseline_share, 4),
            "volume_ratio": round(self.volume_ratio, 2),
            "negative_ratio": round(self.negative_ratio, 2),
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
) -> WindowSignal:
    """Test a window's counts against what the baseline expected for it.

    ``min_expected_negatives`` floors the expectation so that a quiet brand's
    first handful of complaints is not "infinitely" surprising;
    ``min_baseline_share`` does the same for the share.
    """
    exp_neg = max(expected_negatives, min_expected_negatives)
    exp_all = max(expected_mentions, exp_neg)
    base_share = min(max(expected_negatives / expected_mentions if expected_mentions > 0 else 0.0,
                         min_baseline_share), 0.99)
    share = negatives / mentions if mentions else 0.0
    return WindowSignal(
        mentions=mentions,
        negatives=negatives,
        expected_mentions=expected_mentions,
        expected_negatives=expected_negatives,
        negative_ratio=negatives / exp_neg,
        volume_ratio=mentions / exp_all,
        share=share,
        baseline_share=base_share,
        floor_negatives=exp_neg,
        dispersion=max(dispersion, 1.0),
        share_dispersion=max(share_dispersion, 1.0),
    )
