"""From scored mentions to alert events: the processing shared by the service and ``detect``.

The Kafka service and the offline ``crisiswatch detect`` both feed mentions
through one :class:`Pipeline`, so the same mentions in the same per-brand
order give the same alerts, with the same ids, in both.  The pipeline has no
I/O: it de-duplicates by ``(source, id)``, buckets by event minute, feeds the
brand's :class:`~detectors.CrisisDetector` and returns its events.

Late and duplicate decisions depend only on each brand's own history, never
on batch boundaries, so the way a stream is cut into polls does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectors.mention import Mention
from detectors import AlertEvent, CrisisDetector, DetectorConfig, Reading

from .buckets import BrandBuckets, BucketSettings
from .sentiment import polarity


@dataclass(frozen=True)
class PipelineSettings:
    buckets: BucketSettings = field(default_factory=BucketSettings)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    dedup_minutes: int = 24 * 60
    """How long a mention id is remembered for de-duplication (event time)."""


@dataclass
class Counters:
    processed: int = 0
    duplicates: int = 0
    late: int = 0
    alerts: int = 0


class _Brand:
    __slots__ = ("buckets", "detector", "seen")

    def __init__(self, brand: str, settings: PipelineSettings) -> None:
        self.buckets = BrandBuckets(brand, settings.buckets)
        self.detector = CrisisDetector(brand, settings.detector)
        self.seen: dict[tuple[str, str], int] = {}


class Pipeline:
    def __init__(self, settings: PipelineSettings | None = None,
                 on_reading: Callable[[Reading], None] | None = None) -> None:
        self.settings = settings or PipelineSettings()
        self.on_reading = on_reading
        self.brands: dict[str, _Brand] = {}
        self.counters = Counters()

    def process(self, mentions: Sequence[Mention], compounds: Sequence[float]) -> list[AlertEvent]:
        """Add scored mentions (in topic order) and return the alerts they caused."""
        touched: dict[str, _Brand] = {}
        counters = self.counters
        for m, compound in zip(mentions, compounds):
            state = self.brands.get(m.brand)
            if state is None:
                state = self.brands[m.brand] = _Brand(m.brand, self.settings)
            key = (m.source, m.id)
            epoch = m.created_at.timestamp()
            if key in state.seen:
                counters.duplicates += 1
                continue
            state.seen[key] = int(epoch)
            accepted = state.buckets.add(epoch, polarity(compound), compound, m.id, m.text, m.source,
                                         m.author, m.reach, m.url, m.is_repost)
            counters.processed += 1
            if not accepted:
                counters.late += 1
            touched[m.brand] = state
        events: list[AlertEvent] = []
        for state in touched.values():
            events.extend(self._close(state, final=False))
        return events

    def flush(self) -> list[AlertEvent]:
        """Close every open minute (end of a finite input)."""
        events: list[AlertEvent] = []
        for state in self.brands.values():
            events.extend(self._close(state, final=True))
        return events

    def _close(self, state: _Brand, final: bool) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        closed = state.buckets.advance(final=final)
        for bucket in closed:
            reading, new = state.detector.update(bucket)
            if self.on_reading is not None:
                self.on_reading(reading)
            events.extend(new)
        if closed:
            self._forget_old_ids(state, closed[-1].minute)
        self.counters.alerts += len(events)
        return events

    def _forget_old_ids(self, state: _Brand, minute: int) -> None:
        cutoff = minute - 60 * self.settings.dedup_minutes
        seen = state.seen
        while seen:
            key = next(iter(seen))
            if seen[key] >= cutoff:
                break
            del seen[key]
