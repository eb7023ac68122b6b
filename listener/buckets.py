"""Per-brand minute buckets in event time, closed by a watermark.

Each brand has its own watermark: the latest event time seen for the brand
minus ``allowed_lateness_s``.  A minute is closed (handed to the detector)
once the watermark has passed its end; closed minutes are emitted in order
with no gaps (empty minutes are empty buckets, up to ``max_gap_minutes``).

A mention whose minute is already closed is *late*: it is not added to a
closed minute (that would change what the detector already decided), but it
is counted — in :attr:`BrandBuckets.late` and in the ``late`` field of the
next bucket that closes — so it is never silently lost.

The watermark is per brand, not per partition or process, so a brand's
buckets depend only on its own mentions in their order on the topic.  That is
what lets the offline ``crisiswatch detect`` and the Kafka service, or two
services that split the partitions differently, produce identical alerts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from connectors.mention import Mention
from detectors.buckets import MentionDigest, MinuteBucket

from .sentiment import NEGATIVE_AT, POSITIVE_AT


@dataclass(frozen=True)
class BucketSettings:
    allowed_lateness_s: int = 120
    """How long after a minute ends mentions for it are still accepted."""
    max_samples_per_minute: int = 25
    """Negative mentions kept per minute as evidence for explanations."""
    max_sample_chars: int = 500
    max_gap_minutes: int = 7 * 24 * 60
    """A silence longer than this is skipped rather than filled with empty minutes."""


class _Open:
    __slots__ = ("mentions", "negative", "neutral", "positive", "reach", "negative_reach", "authors",
                 "reposts", "sources", "samples", "ids")

    def __init__(self) -> None:
        self.mentions = self.negative = self.neutral = self.positive = 0
        self.reach = self.negative_reach = self.reposts = 0
        self.authors: set[str] = set()
        self.sources: Counter[str] = Counter()
        self.samples: list[MentionDigest] = []
        self.ids: list[tuple[str, str]] = []
        """The ``(source, id)`` of each mention counted: a restored listener must still know them (see
        :meth:`BrandBuckets.open_ids`)."""


class BrandBuckets:
    """The open minutes of one brand."""

    def __init__(self, brand: str, settings: BucketSettings) -> None:
        self.brand = brand
        self.settings = settings
        self._open: dict[int, _Open] = {}
        self.max_event: float | None = None
        self.closed_through: int | None = None
        """Start of the last closed minute."""
        self.late = 0
        self._late_at: dict[int, int] = {}
        self._closable = -1
        """Start of the last minute the watermark has passed (-1 before any mention)."""


    def to_state(self) -> dict[str, object]:
        """Everything :meth:`from_state` needs to continue exactly where this left off (JSON-compatible)."""
        return {
            "open": [[minute, a.mentions, a.negative, a.neutral, a.positive, a.reach, a.negative_reach, a.reposts,
                      sorted(a.authors), sorted(a.sources.items()), [d.to_dict() for d in a.samples], a.ids]
                     for minute, a in sorted(self._open.items())],
            "max_event": self.max_event,
            "closed_through": self.closed_through,
            "late": self.late,
            "late_at": sorted(self._late_at.items()),
            "closable": self._closable,
        }

    @classmethod
    def from_state(cls, brand: str, settings: BucketSettings, state: dict) -> BrandBuckets:
        b = cls(brand, settings)
        for row in state["open"]:
            minute, mentions, neg, neu, pos, reach, neg_reach, reposts, authors, sources, samples = row[:11]
            a = b._open[minute] = _Open()
            a.ids = [(source, id_) for source, id_ in (row[11] if len(row) > 11 else ())]  # older states: none
            a.mentions, a.negative, a.neutral, a.positive = mentions, neg, neu, pos
            a.reach, a.negative_reach, a.reposts = reach, neg_reach, reposts
            a.authors = set(authors)
            a.sources = Counter(dict(sources))
            a.samples = [MentionDigest.from_dict(d) for d in samples]
        b.max_event = state["max_event"]
        b.closed_through = state["closed_through"]
        b.late = state["late"]
        b._late_at = {int(m): n for m, n in state["late_at"]}
        b._closable = state["closable"]
        return b

    def open_ids(self) -> list[tuple[int, tuple[str, str]]]:
        """``(minute, (source, id))`` of every mention in the open minutes.

        The id memory of de-duplication is not snapshotted (a day of ids), but
        these are: a mention re-sent after a restore whose minute is still open
        would otherwise be counted twice.  One whose minute has closed is late
        either way and changes no count."""
        return [(minute, key) for minute, a in sorted(self._open.items()) for key in a.ids]

    def add(self, m: Mention, epoch: float, compound: float) -> bool:
        """Count one scored mention; return False if it was late.

        Late means: its minute is at or before the last minute the watermark
        allows to close.  That depends only on this brand's latest event time,
        not on when :meth:`advance` last ran, so batching cannot change it.
        A late mention is counted in the newest open minute's ``late`` field.
        """
        minute = int(epoch // 60) * 60
        if minute <= self._closable or (self.closed_through is not None and minute <= self.closed_through):
            self.late += 1
            newest = int(self.max_event // 60) * 60  # type: ignore[operator]
            self._late_at[newest] = self._late_at.get(newest, 0) + 1
            return False
        acc = self._open.get(minute)
        if acc is None:
            acc = self._open[minute] = _Open()
        reach = m.reach or 0
        acc.ids.append((m.source, m.id))
        acc.mentions += 1
        acc.reach += reach
        if m.author:
            acc.authors.add(m.author)
        if m.is_repost:
            acc.reposts += 1
        if compound <= NEGATIVE_AT:
            acc.negative += 1
            acc.negative_reach += reach
            acc.sources[m.source] += 1
            if len(acc.samples) < self.settings.max_samples_per_minute:
                acc.samples.append(MentionDigest(m.id, m.text[: self.settings.max_sample_chars], m.source,
                                                 m.author, reach, m.url, compound))
        elif compound >= POSITIVE_AT:
            acc.positive += 1
        else:
            acc.neutral += 1
        if self.max_event is None or epoch > self.max_event:
            self.max_event = epoch
            self._closable = int((epoch - self.settings.allowed_lateness_s) // 60) * 60 - 60
        return True

    def advance(self, final: bool = False) -> list[MinuteBucket]:
        """Close every minute the watermark has passed (all open minutes if ``final``)."""
        if self.max_event is None:
            return []
        if final:
            if not self._open:
                return []
            last = max(self._open)
        else:
            last = self._closable
        if self.closed_through is not None and last <= self.closed_through:
            return []
        out: list[MinuteBucket] = []
        gap_limit = 60 * self.settings.max_gap_minutes
        cursor = None if self.closed_through is None else self.closed_through + 60
        for minute in sorted(m for m in self._open if m <= last):
            if cursor is not None and minute - cursor <= gap_limit:
                out.extend(self._close(m) for m in range(cursor, minute, 60))
            out.append(self._close(minute))
            cursor = minute + 60
        if cursor is not None and last - cursor < gap_limit:
            out.extend(self._close(m) for m in range(cursor, last + 60, 60))
        if out or self.closed_through is not None:
            self.closed_through = last
        return out

    def _close(self, minute: int) -> MinuteBucket:
        acc = self._open.pop(minute, None)
        late = self._late_at.pop(minute, 0)
        if acc is None:
            return MinuteBucket(self.brand, minute, late=late)
        return MinuteBucket(
            brand=self.brand,
            minute=minute,
            mentions=acc.mentions,
            negative=acc.negative,
            neutral=acc.neutral,
            positive=acc.positive,
            reach=acc.reach,
            negative_reach=acc.negative_reach,
            authors=len(acc.authors),
            reposts=acc.reposts,
            late=late,
            negative_sources=tuple(sorted(acc.sources.items())),
            samples=tuple(acc.samples),
        )
