"""Where alert events go: the ``alerts`` topic, the console and the history file.

Every sink takes a batch of events in :meth:`AlertSink.emit` and makes them
durable in :meth:`AlertSink.flush`, which raises if it could not; the listener
commits its input offsets only after every sink has flushed, so an alert is
never lost between a crash and a commit (it may be emitted again, with the
same id, which is what the ids are for).

The Kafka record is keyed by brand (one brand's events stay ordered on one
partition) and carries the alert id in the ``crisiswatch-alert-id`` header
for consumers that de-duplicate.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

import orjson

from connectors.kafka import Producer
from detectors import AlertEvent, Status

ALERT_ID_HEADER = "crisiswatch-alert-id"


class AlertSink(Protocol):
    def emit(self, events: Sequence[AlertEvent]) -> None: ...

    def flush(self) -> None: ...


def to_json(event: AlertEvent) -> bytes:
    return orjson.dumps(event.to_dict())


class KafkaAlertSink:
    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def emit(self, events: Sequence[AlertEvent]) -> None:
        for e in events:
            self.producer.send(self.topic, to_json(e), key=e.brand.encode(),
                               headers=[(ALERT_ID_HEADER, e.id.encode())])

    def flush(self) -> None:
        self.producer.flush()


class MemorySink:
    """Keeps events in a list (the demo's summary, tests)."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    def emit(self, events: Sequence[AlertEvent]) -> None:
        self.events.extend(events)

    def flush(self) -> None:
        pass


class HistorySink:
    """Appends events as JSON lines (the history store the notebooks read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending: list[bytes] = []

    def emit(self, events: Sequence[AlertEvent]) -> None:
        self._pending.extend(to_json(e) + b"\n" for e in events)

    def flush(self) -> None:
        if self._pending:
            import os

            with open(self.path, "ab") as f:
                f.write(b"".join(self._pending))
                f.flush()
                os.fsync(f.fileno())
            self._pending.clear()


class ConsoleSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def emit(self, events: Sequence[AlertEvent]) -> None:
        out = self.stream or sys.stdout
        for e in events:
            out.write(render_text(e) + "\n")

    def flush(self) -> None:
        (self.stream or sys.stdout).flush()


_TITLE = {
    Status.TRIGGERED: "CRISIS TRIGGERED",
    Status.ESCALATED: "CRISIS ESCALATED",
    Status.UPDATED: "CRISIS UPDATE",
    Status.RESOLVED: "CRISIS RESOLVED",
    Status.NOTICE: "VOLUME NOTICE",
}


def render_text(e: AlertEvent) -> str:
    """A plain-text rendering for terminals and logs."""
    d = e.to_dict()
    s = e.stats
    lines = [
        f"=== {_TITLE[e.status]} | {e.brand} | {e.severity.value.upper()} | {d['at']} "
        f"(crisis since {d['started_at']}) ===",
        e.summary,
        f"  numbers : {s.get('negatives')} negative of {s.get('mentions')} mentions in {s.get('window_minutes')} min"
        f" ({float(s.get('negative_share', 0)):.0%} negative, usually {float(s.get('baseline_negative_share', 0)):.0%});"
        f" {s.get('negative_ratio')}x the usual negatives; negative reach {s.get('negative_reach', 0):,}",
    ]
    terms = e.evidence.get("terms") or []
    if terms:
        lines.append("  about   : " + ", ".join(f'"{t["term"]}" ({t["mentions"]})' for t in terms))  # type: ignore[index]
    sources = e.evidence.get("sources") or {}
    if sources:
        lines.append("  sources : " + ", ".join(f"{k} {v}" for k, v in sources.items()))  # type: ignore[union-attr]
    mentions = e.evidence.get("mentions") or []
    if mentions:
        lines.append("  top negative mentions:")
        for m in mentions:  # type: ignore[union-attr]
            text = " ".join(str(m["text"]).split())
            lines.append(f"    - {m['author'] or '?'} ({m['source']}, reach {m['reach']:,}): \"{text[:160]}\"")
    if e.playbook:
        lines.append("  first steps:")
        lines.extend(f"    {i}. {step}" for i, step in enumerate(e.playbook, 1))
    lines.append(f"  id: {e.id}")
    return "\n".join(lines)
