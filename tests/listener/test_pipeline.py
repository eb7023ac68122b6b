from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.mention import Mention
from connectors.simulator import demo_simulation
from listener.offline import run_items
from listener.pipeline import Pipeline, PipelineSettings
from listener.sentiment import Scorer

T = datetime(2026, 11, 23, tzinfo=timezone.utc)


def m(i: int, seconds: int, brand: str = "acme", source: str = "x", text: str = "ok") -> Mention:
    return Mention(id=str(i), source=source, brand=brand, text=text, created_at=T + timedelta(seconds=seconds))


def test_polarity_thresholds_are_vaders() -> None:
    p = Pipeline()
    p.process([m(i, 0) for i in range(5)], [-0.05, -0.0499, 0.0, 0.0499, 0.05])
    (b,) = p.brands["acme"].buckets.advance(final=True)
    assert (b.negative, b.neutral, b.positive) == (1, 3, 1)


def test_scorer_finds_obvious_sentiment() -> None:
    s = Scorer()
    neg, pos = s.score_many(["This is terrible, I hate it", "I love it, wonderful!"])
    assert neg < -0.5 and pos > 0.5


def test_duplicates_by_source_and_id_are_dropped_and_counted() -> None:
    p = Pipeline()
    p.process([m(1, 0), m(1, 5), m(1, 6, source="y"), m(1, 7, brand="other")], [0.0] * 4)
    assert p.counters.duplicates == 1
    assert p.counters.processed == 3


def test_batching_does_not_change_results() -> None:
    items = list(demo_simulation().items())[:6000]
    compounds = Scorer().score_many([x.text for x in items])
    rows_a: list = []
    rows_b: list = []
    a, b = Pipeline(on_reading=rows_a.append), Pipeline(on_reading=rows_b.append)
    a.process(items, compounds)
    for i in range(0, len(items), 7):
        b.process(items[i:i + 7], compounds[i:i + 7])
    a.flush()
    b.flush()
    def key(r):  # brands interleave differently; each brand's own series must be identical
        return (r.brand, r.minute)

    assert sorted(rows_a, key=key) == sorted(rows_b, key=key) and len(rows_a) > 100


def test_demo_stream_detects_the_injected_crisis_offline() -> None:
    sim = demo_simulation()
    result = run_items(sim.items(), PipelineSettings())
    triggered = [e for e in result.events if e.status.value == "triggered"]
    assert [e.brand for e in triggered] == ["acme"]
    start = sim.crises[0].start.timestamp()
    assert 0 < triggered[0].at - start <= 10 * 60
    assert any("breach" in t["term"] for t in triggered[0].evidence["terms"])
    assert [e.status.value for e in result.events][-1] == "resolved"


def test_recent_ids_remember_at_least_the_horizon_and_forget_later() -> None:
    from listener.pipeline import RecentIds

    ids = RecentIds(horizon_s=100)
    assert not ids.check_and_add(("x", "1"), 0)
    assert ids.check_and_add(("x", "1"), 99)
    assert not ids.check_and_add(("x", "2"), 100)  # rotation: "1" moves to the previous generation
    assert ids.check_and_add(("x", "1"), 150)
    assert not ids.check_and_add(("x", "3"), 205)  # second rotation: "1" is forgotten
    assert not ids.check_and_add(("x", "1"), 206)
    assert not ids.check_and_add(("x", "4"), 10_000)  # a long jump drops both generations
    assert len(ids) == 1


def test_the_id_memory_is_bounded_and_a_flood_shortens_its_horizon() -> None:
    from listener.pipeline import RecentIds

    ids = RecentIds(horizon_s=3600, capacity=100)
    assert not any(ids.check_and_add(("x", str(i)), 0.0) for i in range(1000))
    assert len(ids) <= 200 and ids.early == 9
    assert ids.check_and_add(("x", "999"), 1.0)  # the newest are still remembered


def test_the_brand_cap_never_locks_out_a_configured_brand() -> None:
    from listener.pipeline import Pipeline, PipelineSettings

    pipeline = Pipeline(PipelineSettings(max_brands=2), reserved=["acme"])
    assert [pipeline.admit(b) for b in ("junk1", "junk2", "junk3", "acme", "junk1")] == [True, True, False, True, True]
    assert set(pipeline.brands) == {"junk1", "junk2", "acme"}


def test_a_restored_brand_still_knows_the_mentions_of_its_open_minutes() -> None:
    """docs/design.md principle 2: restoring a brand's snapshot gives what an uninterrupted run gives.  A mention
    re-sent after the restore point whose minute was still open is a duplicate, not counted twice; one whose
    minute had closed is counted late (the id memory itself is not in the snapshot) and changes no count."""
    import orjson

    before = [m(i, 10 * i) for i in range(30)]  # minutes 0-4; at 290 s the watermark has closed minutes 0-1
    after = [m(28, 280), m(5, 50), m(40, 300), m(41, 310), m(42, 600)]  # 28: minute 4 (open), 5: minute 0
    rows_a: list = []
    rows_b: list = []
    a = Pipeline(on_reading=rows_a.append)
    a.process(before, [0.0] * len(before))
    b = Pipeline(on_reading=rows_b.append)
    b.process(before, [0.0] * len(before))
    restored = Pipeline(on_reading=rows_b.append)
    restored.restore("acme", orjson.loads(orjson.dumps(b.brand_state("acme"))))
    a.process(after, [0.0] * len(after))
    restored.process(after, [0.0] * len(after))
    a.flush()
    restored.flush()
    assert a.counters.duplicates == 2
    assert (restored.counters.duplicates, restored.counters.late) == (1, 1)

    def counts(rows: list) -> list[tuple[int, int]]:
        return [(r.minute, r.bucket.mentions) for r in rows]

    assert counts(rows_b) == counts(rows_a) and len(rows_a) == 11


def test_a_state_saved_before_open_minute_ids_were_kept_still_loads() -> None:
    p = Pipeline()
    p.process([m(i, 10 * i) for i in range(30)], [0.0] * 30)
    state = p.brand_state("acme")
    state["buckets"]["open"] = [row[:11] for row in state["buckets"]["open"]]  # the layout before the ids
    restored = Pipeline()
    restored.restore("acme", state)
    assert restored.brands["acme"].buckets.open_ids() == []
    restored.process([m(28, 280)], [0.0])
    assert restored.counters.processed == 1
