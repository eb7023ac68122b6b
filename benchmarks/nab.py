"""NAB realTweets: the volume detector against the published detectors and two simple baselines.

Runs ``listener.nab.run_nab`` (what ``crisiswatch nab`` runs) into a temporary folder, scores it with the shared
NAB scorer (``../shared/tools/nab_score.py --profile all``, the same command anyone can run on the output), and
prints the three profiles' normalised scores next to the best published ones and next to two baselines run in
this process with the same scorer:

* the service's current volume test (``CrisisDetector``'s significance half on all mentions: ``SeasonalBaseline``,
  quasi-Poisson tail with ``dispersion`` 2 at ``p_value`` 1e-3, at least 3x and 10 mentions in a 10-minute
  window, and its ``Lifecycle``; durations scaled to the 5-minute buckets);
* a z-score of the raw counts against the trailing day, alert at z >= 4, with the same onset-only 24-hour
  hold-off as ours (so the comparison is about the test, not the hold-off).

``--sensitivity`` adds the score of the detector with one parameter changed at a time (a minute or two).

    python benchmarks/nab.py [--data ../shared/data/nab] [--scorer ../shared/tools/nab_score.py] [--sensitivity]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.baseline import SeasonalBaseline  # noqa: E402
from detectors.detector import DetectorConfig  # noqa: E402
from detectors.events import Status  # noqa: E402
from detectors.lifecycle import Lifecycle  # noqa: E402
from detectors.signals import poisson_tail  # noqa: E402
from detectors.volume import VolumeConfig  # noqa: E402
from listener.nab import bucket_seconds, read_series, run_nab, series_files, write_alerts  # noqa: E402

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PUBLISHED = {"ARTime": (81.84, 70.08, 87.89), "contextOSE": (74.48, 73.13, 76.48)}
"""Best published realTweets scores (``../shared/data/nab/README.md``)."""
TARGET = {"standard": 81.84, "reward_low_FP_rate": 73.13}
SENSITIVITY: dict[str, tuple[float, ...]] = {
    "window_minutes": (5, 15, 20, 30),
    "p_value": (1e-2, 1e-4, 1e-6),
    "peak_return_days": (7, 10, 15, 20, 30),
    "peak_halflife_days": (3, 14),
    "peak_prior_sd": (0.3, 1.0),
    "min_peak_ratio": (1.0, 1.5, 2.0),
    "dispersion_halflife_days": (2, 28),
    "initial_dispersion": (0.01, 1.0),
    "daily_halflife_days": (1, 4),
    "clip_ratio": (1.5, 3.0),
    "holdoff_hours": (6, 12, 48),
}
Detector = Callable[[list[int], list[int]], list[bool]]


def service_test(seconds: list[int], counts: list[int]) -> list[bool]:
    """Alert onsets of the service's current volume test (see the module docstring)."""
    cfg = DetectorConfig()
    step = bucket_seconds(seconds)
    per_minute = 60 / step
    b = cfg.baseline
    baseline = SeasonalBaseline(dataclasses.replace(
        b, overall_halflife_minutes=b.overall_halflife_minutes * per_minute,
        daily_halflife_minutes=b.daily_halflife_minutes * per_minute,
        weekly_halflife_minutes=b.weekly_halflife_minutes * per_minute,
        mature_minutes=max(1, round(b.mature_minutes * per_minute))))
    lifecycle = Lifecycle(max(1, math.ceil(cfg.trigger_minutes * per_minute)),
                          max(1, math.ceil(cfg.quiet_minutes * per_minute)))
    window: deque[tuple[int, float]] = deque(maxlen=max(1, round(cfg.window_minutes * per_minute)))
    warmup = cfg.warmup_minutes * per_minute
    phi = cfg.dispersion
    out = []
    for at, n in zip(seconds, counts):
        expected = baseline.expect(at)
        window.append((n, expected.total))
        s = sum(c for c, _ in window)
        m = max(sum(e for _, e in window), cfg.min_expected_negatives)
        hot = (baseline.minutes_seen >= warmup and s >= cfg.min_negatives and s / m >= cfg.min_ratio
               and poisson_tail(s / phi, m / phi) <= cfg.p_value)
        cool = s / m < cfg.resolve_ratio or s < cfg.min_negatives / 2
        transitions = lifecycle.step(at, hot, cool, 1)
        out.append(any(t.status is Status.TRIGGERED for t in transitions))
        if not lifecycle.active:
            baseline.learn(at, n, 0, expected)
    return out


def zscore_test(seconds: list[int], counts: list[int], z: float = 4.0, holdoff_hours: float = 24.0) -> list[bool]:
    """Raw-count z-score against the trailing day, onset-only with a hold-off."""
    day = max(2, round(86400 / bucket_seconds(seconds)))
    past: deque[int] = deque(maxlen=day)
    total = squares = 0.0
    last: int | None = None
    out = []
    for at, n in zip(seconds, counts):
        fire = False
        if len(past) == day:
            mean = total / day
            sd = math.sqrt(max(squares / day - mean * mean, 0.0))
            fire = sd > 0 and (n - mean) / sd >= z and (last is None or at - last >= holdoff_hours * 3600)
        if fire:
            last = at
        out.append(fire)
        if len(past) == day:
            old = past[0]
            total, squares = total - old, squares - old * old
        past.append(n)
        total, squares = total + n, squares + n * n
    return out


def run_other(data: Path, out: Path, detector: Detector) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in series_files(data):
        stamps, seconds, counts = read_series(path)
        write_alerts(out / path.name, stamps, detector(seconds, counts))


def score(scorer: Path, data: Path, detections: Path) -> dict:
    """The shared scorer's numbers (its ``--json`` report) for one folder of detections."""
    report = detections / "score.json"
    subprocess.run([sys.executable, str(scorer), "--data", str(data), "--detections", str(detections),
                    "--profile", "all", "--json", str(report)], check=True, capture_output=True, text=True)
    return json.loads(report.read_text())["profiles"]


def row(name: str, profiles: dict, seconds: float | None) -> str:
    files = profiles["standard"]["files"].values()
    hit = sum(f["windows_hit"] for f in files)
    windows = sum(f["scoreable_windows"] for f in files)
    alerts = sum(f["alert_rows"] for f in files)
    fps = sum(f["fp_rows"] for f in files)
    scores = "".join(f"{profiles[p]['normalized']:>10.2f}" for p in PROFILES)
    took = f"{seconds:>8.2f}" if seconds is not None else f"{'':>8}"
    return f"{name:<58}{scores}{alerts:>8}{f'{hit}/{windows}':>8}{fps:>8}{took}"


def header() -> str:
    return (f"{'detector':<58}{'standard':>10}{'low_FP':>10}{'low_FN':>10}{'alerts':>8}{'hit':>8}{'FP rows':>8}"
            f"{'seconds':>8}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    ap.add_argument("--scorer", type=Path, default=ROOT.parent / "shared" / "tools" / "nab_score.py")
    ap.add_argument("--sensitivity", action="store_true", help="also vary one detector parameter at a time")
    args = ap.parse_args(argv)
    try:
        files = series_files(args.data)
    except ValueError as e:  # a wrong folder is one line, not a traceback
        ap.error(str(e))
    if not args.scorer.exists():
        ap.error(f"scorer not found: {args.scorer} (pass --scorer)")
    rows = sum(len(read_series(p)[1]) for p in files)

    with tempfile.TemporaryDirectory(prefix="nab-") as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        alerts = run_nab(args.data, out / "volume")
        ours_seconds = time.perf_counter() - started
        ours = score(args.scorer, args.data, out / "volume")
        others = {}
        for name, detector in (("service's current volume test (quasi-Poisson, lifecycle)", service_test),
                               ("z-score >= 4 on raw counts vs trailing day, 24 h hold-off", zscore_test)):
            started = time.perf_counter()
            run_other(args.data, out / name[:7], detector)
            took = time.perf_counter() - started
            others[name] = (score(args.scorer, args.data, out / name[:7]), took)

        print(f"NAB realTweets: {len(files)} files, {rows:,} rows of 5-minute counts; scored by {args.scorer.name} "
              "--profile all (normalised: 0 = never fires, 100 = perfect)")
        print(header())
        print(row("crisiswatch volume detector (detectors/volume.py, defaults)", ours, ours_seconds))
        for name, (profiles, took) in others.items():
            print(row(name, profiles, took))
        for name, scores in PUBLISHED.items():
            print(f"{'published: ' + name:<58}" + "".join(f"{s:>10.2f}" for s in scores))
        met = [f"{p} {ours[p]['normalized']:.2f} {'>' if ours[p]['normalized'] > t else '<='} {t}"
               for p, t in TARGET.items()]
        print("target (above both published bests): " + "; ".join(met))
        print(f"runtime: {ours_seconds:.2f} s for {rows:,} rows ({rows / ours_seconds:,.0f} rows/s, CSV in and out "
              f"included); {sum(alerts.values())} alert rows written ('alerts' counts those after the scorer's "
              "probationary period)")

        if args.sensitivity:
            print("\nsensitivity: one parameter changed at a time from the defaults")
            print(header())
            for field, values in SENSITIVITY.items():
                for value in values:
                    config = dataclasses.replace(VolumeConfig(), **{field: value})
                    folder = out / f"{field}={value}"
                    started = time.perf_counter()
                    run_nab(args.data, folder, config)
                    took = time.perf_counter() - started
                    default = getattr(VolumeConfig(), field)
                    print(row(f"{field} = {value} (default {default})", score(args.scorer, args.data, folder), took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
