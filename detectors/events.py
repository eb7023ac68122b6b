"""The detectors' output: one alert event per crisis lifecycle transition.

The JSON form (:meth:`AlertEvent.to_dict`) is a stable contract, published on
the ``alerts`` topic and written by ``crisiswatch detect``.  Ids are
deterministic — ``<brand>:<crisis start>`` for the crisis and
``<crisis id>:<n>:<status>`` for the n-th transition of it — so a replay of the
same mentions yields the same ids and every sink can de-duplicate on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum


class Status(str, Enum):
    TRIGGERED = "triggered"
    ESCALATED = "escalated"
    UPDATED = "updated"
    RESOLVED = "resolved"


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


def crisis_id(brand: str, started_minute: int) -> str:
    stamp = datetime.fromtimestamp(started_minute, tz=timezone.utc).strftime("%Y%m%dT%H%MZ")
    return f"{brand}:{stamp}"


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
