"""The detectors' output: one alert event per crisis lifecycle transition.

The JSON form (:meth:`AlertEvent.to_dict`) is a stable contract, published on
the ``alerts`` topic and written by ``crisiswatch detect``.  Ids are
deterministic — ``<brand>:<crisis start>`` for the crisis and
``<crisis id>:<n>:<status>`` for the n-th transition of it — so a replay of the
same mentions yields the same ids and every sink can de-duplicate on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class Status(str, Enum):
    TRIGGERED = "triggered"
    ESCALATED = "escalated"
    UPDATED = "updated"
    RESOLVED = "resolved"
    NOTICE = "notice"
    """A one-off, low-severity notice that is not a crisis (a volume spike whose talk is not negative); no
    lifecycle follows it."""


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Severity:
        return _BY_RANK[max(0, min(rank, 3))]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}
_BY_RANK = {v: k for k, v in _RANK.items()}


def iso(epoch: int | float) -> str:
    """Event time as ISO-8601 UTC (``2026-11-23T14:02:00Z``)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(stamp: str) -> int:
    """The inverse of :func:`iso`."""
    return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def _minute_stamp(minute: int) -> str:
    return datetime.fromtimestamp(minute, tz=timezone.utc).strftime("%Y%m%dT%H%MZ")


def crisis_id(brand: str, started_minute: int) -> str:
    return f"{brand}:{_minute_stamp(started_minute)}"


def notice_id(brand: str, started_minute: int, kind: str = "volume") -> str:
    """The ``crisis_id`` of a notice (``volume``: a volume spike; ``surge``: negatives without a common
    topic; ``new``: a brand that appeared from nothing): its own namespace, so it never names a crisis."""
    return f"{brand}:{kind}:{_minute_stamp(started_minute)}"


@dataclass(frozen=True)
class AlertEvent:
    id: str
    crisis_id: str
    brand: str
    status: Status
    severity: Severity
    at: int
    """Event time of the transition: the end of the minute that caused it (epoch seconds)."""
    started_at: int
    summary: str
    stats: dict[str, object] = field(default_factory=dict)
    evidence: dict[str, object] = field(default_factory=dict)
    playbook: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertEvent:
        """The event back from its JSON form (what notifiers receive from the outbox)."""
        return cls(
            id=str(d["id"]),
            crisis_id=str(d["crisis_id"]),
            brand=str(d["brand"]),
            status=Status(d["status"]),
            severity=Severity(d["severity"]),
            at=from_iso(str(d["at"])),
            started_at=from_iso(str(d["started_at"])),
            summary=str(d.get("summary") or ""),
            stats=dict(d.get("stats") or {}),
            evidence=dict(d.get("evidence") or {}),
            playbook=tuple(str(s) for s in d.get("playbook") or ()),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "v": 1,
            "id": self.id,
            "crisis_id": self.crisis_id,
            "brand": self.brand,
            "status": self.status.value,
            "severity": self.severity.value,
            "at": iso(self.at),
            "started_at": iso(self.started_at),
            "summary": self.summary,
            "stats": self.stats,
            "evidence": self.evidence,
            "playbook": list(self.playbook),
        }
