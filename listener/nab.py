"""``crisiswatch nab``: the volume detector on the Numenta Anomaly Benchmark's realTweets series.

Each ``DIR/realTweets/*.csv`` (``timestamp,value``: mentions per bucket, naive timestamps taken as UTC) is fed in
order to a fresh :class:`~detectors.volume.VolumeDetector` with the service's volume defaults; only the bucket width
is read from the data (five minutes in NAB).  ``OUT/<same name>.csv`` gets ``timestamp,alert`` with the input's
timestamps, 1 on the rows where an alert starts.  One configuration for every file, no labels read; score the
output with ``../shared/tools/nab_score.py`` (``benchmarks/nab.py`` does, next to baselines).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from detectors import DetectorConfig
from detectors.volume import VolumeConfig, VolumeDetector

CATEGORY = "realTweets"


def read_series(path: Path) -> tuple[list[str], list[int], list[int]]:
    """The timestamps as written, as epoch seconds (UTC), and the counts of one NAB data file."""
    stamps: list[str] = []
    seconds: list[int] = []
    counts: list[int] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns timestamp,value (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            try:
                at = datetime.fromisoformat(row["timestamp"].strip())
                value = float(row["value"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: not a timestamp,value row: {row}") from e
            if value < 0 or value != int(value):
                raise ValueError(f"{path}:{line}: value {row['value']!r} is not a count")
            at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
            stamps.append(row["timestamp"])
            seconds.append(int(at.timestamp()))
            counts.append(int(value))
    if any(b <= a for a, b in itertools.pairwise(seconds)):
        raise ValueError(f"{path}: timestamps must be strictly increasing")
    return stamps, seconds, counts


def bucket_seconds(seconds: list[int]) -> int:
    """The series' bucket width: its most common step (NAB: 300 s)."""
    steps = Counter(b - a for a, b in itertools.pairwise(seconds))
    if not steps:
        raise ValueError("a series needs at least two rows to tell its bucket width")
    return steps.most_common(1)[0][0]


def detect(seconds: list[int], counts: list[int], config: VolumeConfig) -> list[bool]:
    """Alert onsets of one series under ``config`` (its bucket width replaced by the series')."""
    detector = VolumeDetector(dataclasses.replace(config, bucket_seconds=bucket_seconds(seconds)))
    return [detector.update(at, n).alert for at, n in zip(seconds, counts)]


def series_files(data_dir: Path) -> list[Path]:
    """The ``realTweets/*.csv`` files under ``data_dir``, sorted; a clear error when there are none."""
    files = sorted((Path(data_dir) / CATEGORY).glob("*.csv"))
    if not files:
        raise ValueError(f"no {CATEGORY}/*.csv under {data_dir}: pass the NAB data folder that holds {CATEGORY}/ "
                         "(e.g. ../shared/data/nab)")
    return files


def write_alerts(path: Path, stamps: list[str], flags: list[bool]) -> None:
    """``timestamp,alert`` rows, the format ``nab_score.py`` reads."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["timestamp", "alert"])
        writer.writerows((stamp, int(flag)) for stamp, flag in zip(stamps, flags))


def run_nab(data_dir: Path, out_dir: Path, config: VolumeConfig | None = None) -> dict[str, int]:
    """Write ``out_dir/<name>.csv`` for every ``data_dir/realTweets/<name>.csv``; return each file's alert rows.

    ``config`` defaults to the service's (:meth:`DetectorConfig.volume`: what each brand's volume notices use); the
    benchmark passes others to measure sensitivity.
    """
    files = series_files(data_dir)
    config = config or DetectorConfig().volume()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    alerts: dict[str, int] = {}
    for path in files:
        stamps, seconds, counts = read_series(path)
        flags = detect(seconds, counts, config)
        write_alerts(out_dir / path.name, stamps, flags)
        alerts[path.name] = sum(flags)
    return alerts
