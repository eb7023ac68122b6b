from __future__ import annotations

import math

import pytest
from scipy import stats

from detectors.signals import binomial_tail, poisson_tail, window_signal


@pytest.mark.parametrize("k, mu", [(1, 0.5), (5, 2.0), (30, 10.0), (300, 250.0)])
def test_poisson_tail_matches_scipy(k: int, mu: float) -> None:
    assert math.isclose(poisson_tail(k, mu), stats.poisson.sf(k - 1, mu), rel_tol=1e-9)


@pytest.mark.parametrize("k, n, p", [(1, 10, 0.1), (6, 20, 0.15), (60, 100, 0.3)])
def test_binomial_tail_matches_scipy(k: int, n: int, p: float) -> None:
    assert math.isclose(binomial_tail(k, n, p), stats.binom.sf(k - 1, n, p), rel_tol=1e-9)


def test_edges() -> None:
    assert poisson_tail(0, 3.0) == 1.0 and poisson_tail(3, 0.0) == 0.0
    assert binomial_tail(0, 5, 0.2) == 1.0 and binomial_tail(6, 5, 0.2) == 0.0


def test_count_aware_same_ratio_is_more_significant_with_more_data() -> None:
    kw = dict(dispersion=1.0, min_expected_negatives=0.0, min_baseline_share=0.0)
    small = window_signal(mentions=6, negatives=3, expected_mentions=3, expected_negatives=1, **kw)
    large = window_signal(mentions=6000, negatives=3000, expected_mentions=3000, expected_negatives=1000, **kw)
    assert small.negative_ratio == large.negative_ratio == 3.0
    assert small.p_volume > 0.05
    assert large.p_volume < 1e-100


def test_dispersion_widens_the_null() -> None:
    kw = dict(min_expected_negatives=1.0, min_baseline_share=0.05)
    strict = window_signal(100, 30, 100, 15, dispersion=1.0, **kw)
    loose = window_signal(100, 30, 100, 15, dispersion=3.0, **kw)
    assert strict.p_volume < loose.p_volume


def test_share_uses_the_baseline_share_not_volume() -> None:
    kw = dict(dispersion=1.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    viral_neutral = window_signal(1000, 150, 100, 15, **kw)  # 10x volume, same 15% share
    assert viral_neutral.p_volume < 1e-6
    assert viral_neutral.p_share > 0.3
    assert viral_neutral.share == pytest.approx(0.15)
