"""``crisiswatch detect``: the service's scoring, bucketing and detection on a file, without Kafka.

Reads wire-format JSON lines, runs them through the same
:class:`~listener.pipeline.Pipeline` as the service, and writes the alert
events as JSON lines (and, optionally, the per-minute series as CSV for the
notebooks).  Lines that are not valid mentions are counted by reason and, with
``rejects_path``, written out with their line number — never dropped silently.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from connectors.mention import Mention
from connectors.replay import FileReplay
from connectors.source import Item, Rejected
from detectors import AlertEvent, Reading

from .pipeline import Pipeline, PipelineSettings
from .sentiment import Scorer

CHUNK = 5000


@dataclass
class DetectResult:
    mentions: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    late: int = 0
    events: list[AlertEvent] = field(default_factory=list)


def run_items(items: Iterable[Item], settings: PipelineSettings, scorer: Scorer | None = None,
              on_reading=None, on_reject=None) -> DetectResult:  # type: ignore[no-untyped-def]
    """Run items through a fresh pipeline; return the counts and every alert event, sorted."""
    scorer = scorer or Scorer()
    pipeline = Pipeline(settings, on_reading=on_reading)
    result = DetectResult()
    for chunk in _chunks(items, result, on_reject, pipeline.admit):
        result.mentions += len(chunk)
        result.events.extend(pipeline.process(chunk, scorer.score_many([m.text for m in chunk])))
    result.events.extend(pipeline.flush())
    result.events.sort(key=lambda e: (e.at, e.brand, e.id))
    result.duplicates = pipeline.counters.duplicates
    result.late = pipeline.counters.late
    return result


def _chunks(items: Iterable[Item], result: DetectResult, on_reject,  # type: ignore[no-untyped-def]
            admit: Callable[[str], bool]) -> Iterator[list[Mention]]:
    chunk: list[Mention] = []
    for item in items:
        if not isinstance(item, Rejected) and not admit(item.brand):
            item = Rejected(orjson.dumps(item.to_dict()), "brand_limit",
                            f"more than listener.max_brands brands; {item.brand[:80]!r} refused", "detect")
        if isinstance(item, Rejected):
            result.rejected[item.reason] += 1
            if on_reject is not None:
                on_reject(item)
            continue
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def detect_file(
    input_path: str | Path,
    output_path: str | Path,
    settings: PipelineSettings,
    series_path: str | Path | None = None,
    rejects_path: str | Path | None = None,
) -> DetectResult:
    series_file: IO[str] | None = None
    rejects_file: IO[bytes] | None = None
    writer: csv.DictWriter[str] | None = None
    try:
        on_reading = None
        if series_path:
            series_file = open(series_path, "w", newline="", encoding="utf-8")

            def on_reading(r: Reading) -> None:
                nonlocal writer
                row = r.to_row()
                if writer is None:
                    writer = csv.DictWriter(series_file, fieldnames=list(row))  # type: ignore[arg-type]
                    writer.writeheader()
                writer.writerow(row)

        on_reject = None
        if rejects_path:
            rejects_file = open(rejects_path, "wb")

            def on_reject(item: Rejected) -> None:
                rejects_file.write(orjson.dumps({"origin": item.origin, "reason": item.reason,  # type: ignore[union-attr]
                                                 "detail": item.detail,
                                                 "raw": item.raw.decode("utf-8", "replace")}) + b"\n")

        result = run_items(FileReplay(input_path, format="jsonl").items(), settings,
                           on_reading=on_reading, on_reject=on_reject)
    finally:
        if series_file:
            series_file.close()
        if rejects_file:
            rejects_file.close()
    with open(output_path, "wb") as out:
        for e in result.events:
            out.write(orjson.dumps(e.to_dict()) + b"\n")
    return result
