from __future__ import annotations

from datetime import datetime, timezone

from connectors.mention import Mention
from listener.buckets import BrandBuckets, BucketSettings

T0 = 1_795_392_000


def add(b: BrandBuckets, second: float, polarity: int = 0, author: str = "@a", reach: int = 5,
        source: str = "x") -> bool:
    m = Mention(id=f"id{second}", source=source, brand=b.brand, text="text",
                created_at=datetime.fromtimestamp(T0 + second, tz=timezone.utc), author=author, reach=reach)
    return b.add(m, T0 + second, 0.5 * polarity)


def test_minutes_close_when_the_watermark_passes_them() -> None:
    b = BrandBuckets("acme", BucketSettings(allowed_lateness_s=30))
    add(b, 10, -1, "@a")
    add(b, 20, 1, "@b")
    add(b, 50, 0, "@a")
    assert b.advance() == []
    add(b, 60 + 45)  # watermark = 1:15 -> minute 0 closed
    (m0,) = b.advance()
    assert (m0.minute, m0.mentions, m0.negative, m0.positive, m0.neutral, m0.authors) == (T0, 3, 1, 1, 1, 2)
    assert m0.negative_sources == (("x", 1),) and len(m0.samples) == 1 and m0.negative_reach == 5


def test_gaps_are_filled_with_empty_minutes_in_order() -> None:
    b = BrandBuckets("acme", BucketSettings(allowed_lateness_s=0))
    add(b, 0)
    add(b, 5 * 60 + 1)
    closed = b.advance()
    assert [c.minute - T0 for c in closed] == [0, 60, 120, 180, 240]
    assert [c.mentions for c in closed] == [1, 0, 0, 0, 0]


def test_late_mentions_are_counted_not_added_and_not_lost() -> None:
    b = BrandBuckets("acme", BucketSettings(allowed_lateness_s=60))
    add(b, 0)
    add(b, 200)  # watermark 140 s: minute 0 closable
    assert add(b, 30) is False
    assert b.late == 1
    closed = b.advance(final=True)
    assert [c.mentions for c in closed] == [1, 0, 0, 1]
    assert sum(c.late for c in closed) == 1
    assert closed[3].late == 1  # counted in the newest minute at the time it arrived


def test_lateness_does_not_depend_on_when_advance_runs() -> None:
    events = [0, 200, 30, 250, 100, 500, 45, 470]
    eager = BrandBuckets("acme", BucketSettings(allowed_lateness_s=60))
    lazy = BrandBuckets("acme", BucketSettings(allowed_lateness_s=60))
    out_eager = []
    for s in events:
        add(eager, s)
        out_eager += eager.advance()
        add(lazy, s)
    out_eager += eager.advance(final=True)
    out_lazy = lazy.advance() + lazy.advance(final=True)
    assert out_eager == out_lazy
    assert eager.late == lazy.late == 3


def test_samples_are_capped() -> None:
    b = BrandBuckets("acme", BucketSettings(max_samples_per_minute=2))
    for i in range(5):
        add(b, i, -1)
    (m,) = b.advance(final=True)
    assert m.negative == 5 and len(m.samples) == 2


def test_long_silence_is_skipped_not_filled() -> None:
    b = BrandBuckets("acme", BucketSettings(allowed_lateness_s=0, max_gap_minutes=10))
    add(b, 0)
    b.advance()
    add(b, 3600 * 24)
    add(b, 3600 * 24 + 61)
    closed = b.advance()
    assert len(closed) < 15
