from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import nbinom, poisson

from detectors.volume import VolumeConfig, VolumeDetector, VolumeReading, nb_tail

from .helpers import T0

FIVE = VolumeConfig(bucket_seconds=300)
DAY = 288  # five-minute buckets


def daily_rate(i: int, low: float, high: float) -> float:
    """A smooth daily cycle: ``low`` at 02:00 UTC, ``high`` at 14:00 UTC."""
    phase = 2 * math.pi * ((i % DAY) / DAY - 14 / 24)
    return low + (high - low) * (1 + math.cos(phase)) / 2


def counts(days: float, low: float = 5, high: float = 40, seed: int = 1, dispersion: float = 0.0) -> list[int]:
    """Counts per five-minute bucket with a daily cycle; gamma-Poisson noise when ``dispersion`` > 0."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(int(days * DAY)):
        mean = daily_rate(i, low, high)
        if dispersion:
            mean = rng.gamma(1 / dispersion, mean * dispersion)
        out.append(int(rng.poisson(mean)))
    return out


def run(series: list[int], config: VolumeConfig = FIVE, det: VolumeDetector | None = None,
        start: int = 0) -> list[VolumeReading]:
    det = det or VolumeDetector(config)
    step = config.bucket_seconds
    return [det.update(T0 + step * (start + i), n) for i, n in enumerate(series)]


def alerts(readings: list[VolumeReading]) -> list[int]:
    return [i for i, r in enumerate(readings) if r.alert]


def test_nb_tail_is_the_negative_binomial_survival_and_poisson_without_dispersion() -> None:
    for k, mean, a in [(15, 7.3, 0.4), (3, 0.5, 1.0), (2500, 1000.0, 0.2)]:
        size = 1 / a
        assert nb_tail(k, mean, a) == pytest.approx(nbinom.sf(k - 1, size, size / (size + mean)), rel=1e-9)
    assert nb_tail(12, 4.0, 0.0) == pytest.approx(poisson.sf(11, 4.0), rel=1e-9)
    assert nb_tail(0, 4.0, 0.3) == 1.0 and nb_tail(3, 0.0, 0.3) == 0.0


def test_daily_cycle_without_anomaly_raises_nothing() -> None:
    readings = run(counts(14, seed=2))
    assert alerts(readings) == []
    # it did learn the cycle: the afternoon expects several times the night
    assert readings[-DAY + 14 * 12].expected > 4 * readings[-DAY + 2 * 12].expected


def test_overdispersed_cycle_raises_nothing_and_learns_its_dispersion() -> None:
    readings = run(counts(14, seed=3, dispersion=0.3))
    assert alerts(readings) == []
    assert 0.15 < readings[-1].dispersion < 0.8
    assert run(counts(14, seed=3))[-1].dispersion < 0.05  # plain Poisson noise: next to nothing


def test_a_spike_alerts_once_within_minutes() -> None:
    series = counts(7, seed=4)
    start = 6 * DAY + 15 * 12  # 15:00 UTC on day 7, near the daily peak
    for i in range(start, start + 6):
        series[i] += 200
    readings = run(series)
    assert alerts(readings) == [start]
    first = readings[start]
    assert first.hot and first.holding and first.p_value < 1e-6 and first.window_count >= first.peak_bar


def test_a_step_up_alerts_at_its_onset_and_then_holds_off() -> None:
    series = counts(7, seed=5)
    start = 5 * DAY + 12 * 12  # noon UTC: four times the usual afternoon
    series[start:] = [4 * n for n in series[start:]]
    readings = run(series)
    found = alerts(readings)
    assert found[0] in (start, start + 1)
    assert all(r.holding for r in readings[found[0]:found[0] + DAY])
    assert all(i >= found[0] + DAY for i in found[1:])  # at most one alert a day while the new level is learned


def test_a_slow_burn_alerts_once_while_it_builds() -> None:
    series = counts(8, seed=6)
    start, hours = 7 * DAY, 12
    for j in range(hours * 12):  # the extra volume grows linearly to 4x the afternoon peak over 12 hours
        series[start + j] += int(4 * 40 * j / (hours * 12))
    readings = run(series)
    found = alerts(readings)
    assert len(found) == 1 and start < found[0] < start + hours * 12


def test_a_night_time_rise_that_stays_below_the_daily_peak_is_not_news() -> None:
    series = counts(7, seed=7)
    start = 6 * DAY + 1 * 12  # 01:00-04:00 UTC: 3x the night-time rate, still below the afternoon peak
    for i in range(start, start + 36):
        series[i] = int(3 * daily_rate(i, 5, 40))
    assert alerts(run(series)) == []


def test_sparse_counts_need_several_more_mentions_not_sigmas() -> None:
    rng = np.random.default_rng(8)
    quiet = [int(n) for n in rng.poisson(0.05, 7 * DAY)]
    small = quiet.copy()
    small[6 * DAY + 100] += 3  # three mentions where there are usually none
    assert alerts(run(small)) == []
    burst = quiet.copy()
    for i in range(6 * DAY + 100, 6 * DAY + 102):
        burst[i] += 15
    assert alerts(run(burst)) == [6 * DAY + 100]


def test_all_zeros_raise_nothing() -> None:
    assert alerts(run([0] * (3 * DAY))) == []


def test_first_day_alerts_only_on_a_jump_after_the_warmup() -> None:
    early = counts(1, seed=9)  # the first morning rise (eightfold) is not an alarm
    early[12] += 60  # a sixfold spike in the first two hours: no history to judge it by
    early[220] += 60  # a rise by half the day's peak window: not a jump
    early[200] += 500
    readings = run(early)
    assert alerts(readings) == [200]
    assert readings[200].peak_bar == pytest.approx(3 * max(r.window_count for r in readings[:200]))


def test_one_minute_buckets_use_the_same_durations() -> None:
    config = VolumeConfig()
    det = VolumeDetector(config)
    assert config.bucket_seconds == 60 and config.window_buckets == 10
    rng = np.random.default_rng(10)
    minutes = 5 * 1440
    series = [int(n) for n in rng.poisson(2.0, minutes)]
    for i in range(minutes - 100, minutes - 90):
        series[i] += 30
    readings = run(series, config, det)
    assert alerts(readings) == [minutes - 100]


def test_same_input_same_output_and_state_round_trip() -> None:
    series = counts(6, seed=11, dispersion=0.2)
    series[5 * DAY + 170] += 300
    whole = run(series)
    assert whole == run(series)
    half = 5 * DAY
    det = VolumeDetector(FIVE)
    first = run(series[:half], det=det)
    restored = VolumeDetector.from_state(json.loads(json.dumps(det.to_state())), FIVE)
    assert first + run(series[half:], det=restored, start=half) == whole
    assert alerts(whole)


def test_rejects_out_of_order_buckets_negative_counts_and_bad_configs() -> None:
    det = VolumeDetector(FIVE)
    det.update(T0, 1)
    with pytest.raises(ValueError):
        det.update(T0, 1)
    with pytest.raises(ValueError):
        det.update(T0 + 300, -1)
    with pytest.raises(ValueError):
        VolumeConfig(bucket_seconds=600, window_minutes=5)
    with pytest.raises(ValueError):
        VolumeConfig(p_value=0)
    with pytest.raises(ValueError):
        VolumeDetector.from_state({"version": 0}, FIVE)


def test_a_gap_in_the_stream_empties_the_window() -> None:
    det = VolumeDetector(FIVE)
    run([7, 8, 9], det=det)
    after_gap = det.update(T0 + 300 * 30, 4)  # two hours later
    assert after_gap.window_count == 4
