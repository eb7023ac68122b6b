"""The detectors' input: one brand's activity in one event-time minute.

Buckets are built by the listener (in event time, with a watermark) and fed to
a detector in minute order with no gaps; an empty minute is a bucket with zero
counts.  Negative mentions are carried as capped samples so the detector can
explain a crisis without ever seeing the stream itself.

The values on the per-mention and per-minute paths are named tuples: immutable
like a frozen dataclass, and three to five times cheaper to build (measured
with ``benchmarks/throughput.py``, where they are built tens of thousands of
times a second).
"""

from __future__ import annotations

from typing import NamedTuple


class MentionDigest(NamedTuple):
    """What an alert may quote of one negative mention."""

    id: str
    text: str
    source: str
    author: str | None = None
    reach: int = 0
    url: str | None = None
    compound: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "source": self.source, "author": self.author,
                "reach": self.reach, "url": self.url, "compound": round(self.compound, 4)}

    @classmethod
    def from_dict(cls, d: dict) -> MentionDigest:
        return cls(id=d["id"], text=d["text"], source=d["source"], author=d.get("author"),
                   reach=int(d.get("reach") or 0), url=d.get("url"), compound=float(d.get("compound", 0.0)))


class MinuteBucket(NamedTuple):
    """Counts for one brand in the minute starting at ``minute`` (epoch seconds, UTC)."""

    brand: str
    minute: int
    mentions: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    reach: int = 0
    negative_reach: int = 0
    authors: int = 0
    reposts: int = 0
    late: int = 0
    negative_sources: tuple[tuple[str, int], ...] = ()
    samples: tuple[MentionDigest, ...] = ()
