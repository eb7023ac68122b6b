"""The listener against the real embedded broker (Tansu): alerts, dead letters, restarts."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from connectors.kafka import DeliveryError, KafkaSettings, Producer, read_all
from connectors.mention import Mention, encode
from connectors.publish import DLQ_MAX_BYTES, REASON_HEADER, TRUNCATED_HEADER, MentionPublisher
from connectors.replay import FileReplay
from connectors.simulator import BrandProfile, Simulation, demo_simulation
from listener.alerts import ALERT_ID_HEADER, KafkaAlertSink, MemorySink
from listener.app import ingest
from listener.broker import EmbeddedBroker
from listener.config import Config, ListenerSettings
from listener.offline import run_items
from listener.service import Listener

pytestmark = pytest.mark.broker


def config_for(kafka: KafkaSettings) -> Config:
    return Config(kafka=kafka, listener=ListenerSettings(console=False, poll_timeout_ms=200))


def run_listener(config: Config, producer: Producer, expected: int, timeout_s: float = 90.0) -> tuple[Listener, MemorySink]:
    memory = MemorySink()
    listener = Listener(config, producer, [KafkaAlertSink(producer, config.kafka.alerts_topic), memory])
    deadline = time.monotonic() + timeout_s
    listener.run(threading.Event(), until=lambda: listener.stats.consumed >= expected or time.monotonic() > deadline)
    return listener, memory


def publish(kafka: KafkaSettings, producer: Producer, mentions: list[Mention]) -> None:
    pub = MentionPublisher(producer, kafka)
    for m in mentions:
        pub.publish(m)
    pub.flush()


def test_mentions_become_alert_events_on_the_alerts_topic_with_the_same_ids_as_detect(kafka: KafkaSettings) -> None:
    mentions = list(demo_simulation().items())
    producer = Producer(kafka)
    publish(kafka, producer, mentions)
    listener, memory = run_listener(config_for(kafka), producer, len(mentions))
    producer.close()
    assert listener.stats.consumed == len(mentions)

    records = read_all(kafka, kafka.alerts_topic, timeout_s=15)
    events = [orjson.loads(r.value) for r in records]
    assert events, "no alert events on the alerts topic"
    for r, e in zip(records, events, strict=True):
        assert r.key == e["brand"].encode()
        assert dict(r.headers)[ALERT_ID_HEADER] == e["id"].encode()
        assert set(e) >= {"id", "brand", "status", "severity", "at", "started_at", "summary", "stats", "evidence",
                          "playbook"}
        assert e["status"] in ("triggered", "escalated", "updated", "resolved")
        assert e["severity"] in ("info", "warning", "error", "critical")
        assert {"window_minutes", "mentions", "negatives", "negative_share", "baseline_negatives",
                "negative_ratio"} <= set(e["stats"])
    triggered = [e for e in events if e["status"] == "triggered"]
    assert triggered and triggered[0]["brand"] == "acme"
    assert triggered[0]["evidence"]["terms"] and triggered[0]["evidence"]["mentions"]
    assert triggered[0]["playbook"]

    # `detect` on the same mentions: the same alerts, with the same ids and content.  (The demo's
    # crisis resolves well before the stream ends, so the minutes that only detect's end-of-input
    # flush closes hold no transition.)
    offline = run_items(iter(mentions), config_for(kafka).pipeline)
    assert [e.id for e in memory.events] == [e["id"] for e in events]
    assert sorted(e["id"] for e in events) == sorted(e.id for e in offline.events)
    assert sorted(events, key=lambda e: e["id"]) == sorted((e.to_dict() for e in offline.events),
                                                           key=lambda e: e["id"])


def test_malformed_messages_go_to_the_dlq_with_a_reason_and_do_not_stop_the_listener(kafka: KafkaSettings) -> None:
    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    good = [Mention(id=str(i), source="x", brand="acme", text="fine", created_at=t + timedelta(seconds=i))
            for i in range(20)]
    bad = [b"{not json", b"\xff\xfe", orjson.dumps({"id": "1"}),
           orjson.dumps({**good[0].to_dict(), "v": 9}), b"x" * 70_000]
    producer = Producer(kafka)
    for i, m in enumerate(good):
        producer.send(kafka.mentions_topic, encode(m), key=b"acme")
        if i < len(bad):
            producer.send(kafka.mentions_topic, bad[i], key=b"acme")
    producer.flush()
    listener, _ = run_listener(config_for(kafka), producer, len(good) + len(bad))
    producer.close()
    assert listener.stats.consumed == len(good) + len(bad)
    assert listener.pipeline.counters.processed == len(good)
    assert dict(listener.stats.dead_letters) == {"invalid_json": 1, "not_utf8": 1, "missing_field": 1,
                                                 "unsupported_version": 1, "too_large": 1}
    dlq = read_all(kafka, kafka.dlq_topic, timeout_s=15)
    assert sorted(r.value for r in dlq) == sorted(b[:DLQ_MAX_BYTES] for b in bad)  # the 70,000 bytes are cut
    assert [dict(r.headers).get(TRUNCATED_HEADER) for r in dlq].count(b"70000") == 1
    for r in dlq:
        headers = dict(r.headers)
        assert headers[REASON_HEADER] in {b"invalid_json", b"not_utf8", b"missing_field", b"unsupported_version",
                                          b"too_large"}
        assert headers["crisiswatch-origin"].startswith(kafka.mentions_topic.encode() + b"/")


def test_hostile_input_goes_to_the_dlq_and_memory_stays_bounded(kafka: KafkaSettings) -> None:
    """Future dates, control characters, a flood of brands, a flood of ids, megabytes: none stops the loop."""
    from dataclasses import replace

    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    good = [Mention(id=f"g{i}", source="x", brand="acme", text="fine \x1b[2J\x00", created_at=t + timedelta(seconds=i))
            for i in range(50)]
    future = Mention(id="f", source="x", brand="acme", text="from 2090", created_at=datetime(2090, 1, 1,
                                                                                          tzinfo=timezone.utc))
    flood = [Mention(id=f"b{i}", source="x", brand=f"garbage-{i}", text="x", created_at=t) for i in range(30)]
    bad_brand = orjson.dumps({**good[0].to_dict(), "id": "c", "brand": "ac\x1bme"})
    huge = orjson.dumps({**good[0].to_dict(), "id": "h", "text": "y" * 900_000})  # under the producer's 1 MB request limit
    producer = Producer(kafka)
    for m in [*good, future, *flood]:
        producer.send(kafka.mentions_topic, encode(m), key=m.brand.encode())
    for raw in (bad_brand, huge):
        producer.send(kafka.mentions_topic, raw, key=b"acme")
    producer.flush()
    config = config_for(kafka)
    config = replace(config, listener=replace(config.listener, max_brands=10, dedup_capacity=20),
                     brands=({"name": "acme", "keywords": ["acme"]},))  # configured: never locked out
    total = len(good) + 1 + len(flood) + 2
    listener = Listener(config, producer, [MemorySink()])
    deadline = time.monotonic() + 90
    while listener.stats.consumed < total and time.monotonic() < deadline:
        listener.step()
    assert listener.stats.consumed == total
    admitted = len(listener.pipeline.brands) - 1  # garbage brands that got a slot before the cap
    assert 9 <= admitted <= 10 and "acme" in listener.pipeline.brands
    assert dict(listener.stats.dead_letters) == {"future_timestamp": 1, "brand_limit": len(flood) - admitted,
                                                 "invalid_value": 1, "too_large": 1}
    assert listener.pipeline.dedup_rotations >= 1 and len(listener.pipeline.brands["acme"].seen) <= 2 * 20
    assert listener.pipeline.counters.processed == len(good) + admitted
    listener.close()
    producer.close()
    dlq = {dict(r.headers)[REASON_HEADER] for r in read_all(kafka, kafka.dlq_topic, timeout_s=15)}
    assert dlq == {b"future_timestamp", b"brand_limit", b"invalid_value", b"too_large"}


def test_restart_after_clean_stop_resumes_from_committed_offsets(kafka: KafkaSettings) -> None:
    sim = Simulation(brands=(BrandProfile("a", 3.0), BrandProfile("b", 2.0)),
                     start=datetime(2026, 11, 23, tzinfo=timezone.utc), minutes=240, seed=11)
    mentions = list(sim.items())
    half = len(mentions) // 2
    producer = Producer(kafka)
    publish(kafka, producer, mentions[:half])
    first, _ = run_listener(config_for(kafka), producer, half)
    assert first.stats.consumed == half

    publish(kafka, producer, mentions[half:])
    second, _ = run_listener(config_for(kafka), producer, len(mentions) - half)
    producer.close()
    assert second.stats.consumed == len(mentions) - half  # nothing read twice
    assert first.pipeline.counters.processed + second.pipeline.counters.processed == len(mentions)


def test_ingest_publishes_a_file_and_dead_letters_its_bad_lines(kafka: KafkaSettings, tmp_path: Path) -> None:
    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    path = tmp_path / "m.jsonl"
    lines = [encode(Mention(id=str(i), source="x", brand=b, text="hello", created_at=t))
             for i, b in enumerate(["acme", "globex", "acme"])]
    path.write_bytes(b"\n".join(lines[:2] + [b'{"id": 3}'] + lines[2:]) + b"\n")
    report = ingest(config_for(kafka), threading.Event(), [(FileReplay(path), None)])
    assert (report.published, report.rejected) == (3, 1)
    got = read_all(kafka, kafka.mentions_topic, timeout_s=15)
    assert sorted((r.key, r.value) for r in got) == sorted((m.split(b'"brand":"')[1].split(b'"')[0], m)
                                                          for m in lines)
    (dead,) = read_all(kafka, kafka.dlq_topic, timeout_s=15)
    assert dict(dead.headers)[REASON_HEADER] == b"wrong_type"  # id must be a string
    assert dict(dead.headers)["crisiswatch-origin"] == b"file:m.jsonl:3"


def test_delivery_failures_are_counted_and_raised_never_ignored() -> None:
    with EmbeddedBroker() as b:
        settings = KafkaSettings(bootstrap_servers=(b.bootstrap,), enable_idempotence=False)
        producer = Producer(settings, delivery_timeout_ms=1500, request_timeout_ms=1000, max_block_ms=1000,
                            retries=1)
        producer.send("t", b"before")
        producer.flush()
    # the broker is gone now
    producer.send("t", b"after")
    with pytest.raises(DeliveryError):
        producer.flush(timeout_s=10)
    assert producer.failed >= 1 and producer.delivered == 1
    producer.close(timeout_s=1)


def test_ingest_matches_posts_to_brands_and_counts_unmatched(kafka: KafkaSettings) -> None:
    from connectors.brands import BrandMatcher, BrandRule
    from connectors.post import Post

    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    posts = [Post("rss", "rss:1", "Acme and Globex both down", t), Post("rss", "rss:2", "nothing here", t),
             Post("rss", "rss:3", "globex recall", t)]

    class PostSource:
        name = "posts"

        def items(self):  # type: ignore[no-untyped-def]
            yield from posts

    matcher = BrandMatcher([BrandRule("acme", keywords=("acme",)), BrandRule("globex", keywords=("globex",))])
    report = ingest(config_for(kafka), threading.Event(), [(PostSource(), None)], matcher=matcher)
    assert (report.published, report.unmatched) == (3, 1)
    got = sorted((r.key, orjson.loads(r.value)["id"]) for r in read_all(kafka, kafka.mentions_topic, timeout_s=15))
    assert got == [(b"acme", "rss:1"), (b"globex", "rss:1"), (b"globex", "rss:3")]
