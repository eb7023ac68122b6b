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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from connectors.mention import Mention
from detectors import AlertEvent, CrisisDetector, DetectorConfig, Reading

from .buckets import BrandBuckets, BucketSettings


@dataclass(frozen=True)
class PipelineSettings:
    buckets: BucketSettings = field(default_factory=BucketSettings)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    dedup_minutes: int = 24 * 60
    """How long a mention id is remembered for de-duplication (event time)."""
    dedup_capacity: int = 200_000
    """At most this many ids a brand per generation (two generations): under a flood of distinct ids the
    horizon shrinks (counted: :attr:`Pipeline.dedup_rotations`) instead of memory growing without bound."""
    max_brands: int = 10_000
    """Brands tracked at once; mentions of further brands are refused (:meth:`Pipeline.admit`)."""


@dataclass
class Counters:
    processed: int = 0
    duplicates: int = 0
    late: int = 0
    alerts: int = 0


class RecentIds:
    """The ids seen in the last ``horizon_s`` of event time (at least that long, at most twice).

    Two generations of sets: ids go into the current one, and once event time
    passes the generation's end the older set is dropped whole — O(1) per id,
    no per-id timestamps, and deterministic because it follows event time.
    """

    __slots__ = ("horizon_s", "capacity", "current", "previous", "until", "early")

    def __init__(self, horizon_s: float, capacity: int = 200_000) -> None:
        self.horizon_s = horizon_s
        self.capacity = capacity
        self.current: set[tuple[str, str]] = set()
        self.previous: set[tuple[str, str]] = set()
        self.until: float | None = None
        self.early = 0
        """Generations ended early because ``capacity`` was reached."""

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def check_and_add(self, key: tuple[str, str], epoch: float) -> bool:
        """True if ``key`` was seen already; otherwise remember it and return False."""
        if key in self.current or key in self.previous:
            return True
        if self.until is None:
            self.until = epoch + self.horizon_s
        elif epoch >= self.until:
            stale = epoch >= self.until + self.horizon_s
            self.previous, self.current = (set() if stale else self.current), set()
            self.until = epoch + self.horizon_s
        elif len(self.current) >= self.capacity:
            self.previous, self.current = self.current, set()
            self.until = epoch + self.horizon_s
            self.early += 1
        self.current.add(key)
        return False


class _Brand:
    __slots__ = ("brand", "buckets", "detector", "seen")

    def __init__(self, brand: str, settings: PipelineSettings) -> None:
        self.brand = brand
        self.buckets = BrandBuckets(brand, settings.buckets)
        self.detector = CrisisDetector(brand, settings.detector)
        self.seen = RecentIds(60.0 * settings.dedup_minutes, settings.dedup_capacity)

    def to_state(self) -> dict[str, object]:
        return {"buckets": self.buckets.to_state(), "detector": self.detector.to_state()}

    @classmethod
    def from_state(cls, brand: str, settings: PipelineSettings, state: dict) -> _Brand:
        b = cls(brand, settings)
        b.buckets = BrandBuckets.from_state(brand, settings.buckets, state["buckets"])
        b.detector = CrisisDetector.from_state(state["detector"], settings.detector)
        for minute, key in b.buckets.open_ids():
            b.seen.check_and_add(key, minute)
        return b


class Pipeline:
    def __init__(self, settings: PipelineSettings | None = None,
                 on_reading: Callable[[Reading], None] | None = None, reserved: Iterable[str] = ()) -> None:
        self.settings = settings or PipelineSettings()
        self.on_reading = on_reading
        self.reserved = frozenset(reserved)
        """Brands always admitted (the configured ``[[brands]]``): a flood of made-up brands cannot lock them out."""
        self.brands: dict[str, _Brand] = {}
        self.counters = Counters()

    def brand_state(self, brand: str) -> dict[str, object]:
        """A brand's buckets and detector (see :mod:`listener.state`)."""
        return self.brands[brand].to_state()

    def restore(self, brand: str, state: dict) -> None:
        self.brands[brand] = _Brand.from_state(brand, self.settings, state)

    @property
    def dedup_rotations(self) -> int:
        """Times a brand's id memory was full and its older generation was dropped early (a flood of ids)."""
        return sum(b.seen.early for b in self.brands.values())

    def admit(self, brand: str) -> bool:
        """May mentions of ``brand`` be processed?  Every brand already tracked and every reserved brand may;
        another new one only while fewer than ``max_brands`` are tracked.  Memory stays bounded under a flood
        of distinct (often garbage) brand names; the caller dead-letters what is refused (reason
        ``brand_limit``), so it is never silent."""
        if brand in self.brands:
            return True
        if len(self.brands) >= self.settings.max_brands and brand not in self.reserved:
            return False
        self.brands[brand] = _Brand(brand, self.settings)
        return True

    def process(self, mentions: Sequence[Mention], compounds: Sequence[float]) -> list[AlertEvent]:
        """Add scored mentions (in topic order) and return the alerts they caused."""
        touched: dict[str, _Brand] = {}
        brands = self.brands
        state: _Brand | None = None
        processed = duplicates = late = 0
        for m, compound in zip(mentions, compounds, strict=True):
            brand = m.brand
            if state is None or state.brand != brand:
                state = brands.get(brand)
                if state is None:
                    state = brands[brand] = _Brand(brand, self.settings)
                touched[brand] = state
            epoch = m.created_at.timestamp()
            if state.seen.check_and_add((m.source, m.id), epoch):
                duplicates += 1
                continue
            processed += 1
            if not state.buckets.add(m, epoch, compound):
                late += 1
        counters = self.counters
        counters.processed += processed
        counters.duplicates += duplicates
        counters.late += late
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
        self.counters.alerts += len(events)
        return events
