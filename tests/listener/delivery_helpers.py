"""Alert events as outbox notices, for the outbox and dispatcher tests."""

from __future__ import annotations

from collections.abc import Sequence

from detectors import AlertEvent
from listener.outbox import Notice


def notices(events: Sequence[AlertEvent], receivers: Sequence[str]) -> list[Notice]:
    """One notice per event, ordered within its crisis by transition number (as the on-call engine does)."""
    return [Notice(e.id, e.crisis_id, int(e.id.rsplit(":", 2)[1]), e.to_dict(), tuple(receivers)) for e in events]
