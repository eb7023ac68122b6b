"""Hand-built minute series for detector tests."""

from __future__ import annotations

from detectors import MentionDigest, MinuteBucket

T0 = 1_795_392_000  # 2026-11-23T00:00:00Z, a Monday


def bucket(minute_index: int, mentions: int, negative: int, brand: str = "acme", texts: tuple[str, ...] = (),
           reach: int = 10, source: str = "twitter", copies: bool = False) -> MinuteBucket:
    """A minute whose evidence sample holds ``texts``, each by its own author.  Each text is made distinct
    (two numbers appended, which no term counts), as different people word the same complaint differently;
    ``copies=True`` keeps them verbatim (a paste or retweet burst)."""
    samples = tuple(MentionDigest(id=f"{minute_index}:{i}", text=t if copies else f"{t} {minute_index} {i}",
                                  source=source, author=f"@a{minute_index}-{i}", reach=reach)
                    for i, t in enumerate(texts))
    return MinuteBucket(brand=brand, minute=T0 + 60 * minute_index, mentions=mentions, negative=negative,
                        positive=max(mentions - negative, 0), negative_reach=reach * negative,
                        negative_sources=((source, negative),) if negative else (), samples=samples)
