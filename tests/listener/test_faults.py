"""Faults that must never stop the pages (issue #14), each reproduced against the real embedded broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from kafka import KafkaAdminClient

from connectors.kafka import DeliveryError, KafkaSettings, Producer, read_all
from connectors.mention import Mention, encode
from connectors.publish import DLQ_MAX_BYTES, REASON_HEADER, TRUNCATED_HEADER
from listener.alerts import MemorySink
from listener.config import Config, ListenerSettings
from listener.service import Backoff, Listener

pytestmark = pytest.mark.broker

T0 = datetime(2026, 11, 23, tzinfo=timezone.utc)


def mentions(n: int, prefix: str = "m") -> list[Mention]:
    return [Mention(id=f"{prefix}{i}", source="x", brand="acme", text="fine", created_at=T0 + timedelta(seconds=i))
            for i in range(n)]


def listener_for(kafka: KafkaSettings, producer: Producer, **settings: object) -> Listener:
    return Listener(Config(kafka=kafka, listener=ListenerSettings(console=False, poll_timeout_ms=200, **settings)),
                    producer, [MemorySink()])


def step_until(listener: Listener, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        listener.step()


def send(kafka: KafkaSettings, producer: Producer, items: list[Mention | bytes]) -> None:
    for m in items:
        producer.send(kafka.mentions_topic, m if isinstance(m, bytes) else encode(m), key=b"acme")
    producer.flush()


def test_a_mention_of_about_one_mib_is_dead_lettered_cut_and_the_stream_goes_on(kafka: KafkaSettings) -> None:
    # Kafka's default limits accept a 1,048,483-byte record; its dead-letter copy with our headers did not fit
    # the producer's request limit, and the listener took that for an outage and replayed it forever.
    huge = orjson.dumps({**mentions(1)[0].to_dict(), "id": "huge", "text": ""})
    huge = huge.replace(b'"text":""', b'"text":"' + b"y" * (1_048_483 - len(huge)) + b'"')
    assert len(huge) == 1_048_483
    good = mentions(20)
    producer = Producer(kafka)
    send(kafka, producer, [huge, *good])
    listener = listener_for(kafka, producer)
    deadline = time.monotonic() + 30
    listener.run(threading.Event(), until=lambda: listener.stats.consumed >= 21 or time.monotonic() > deadline)
    assert listener.stats.consumed == 21 and listener.stats.broker_errors == 0
    assert listener.pipeline.counters.processed == 20
    (dead,) = read_all(kafka, kafka.dlq_topic, timeout_s=15)
    headers = dict(dead.headers)
    assert headers[REASON_HEADER] == b"too_large" and headers[TRUNCATED_HEADER] == b"1048483"
    assert dead.value == huge[:DLQ_MAX_BYTES]
    producer.close()


def test_a_dead_letter_kafka_refuses_is_counted_not_raised_and_other_refusals_still_raise(
        kafka: KafkaSettings) -> None:
    producer = Producer(kafka, max_request_size=4096)
    producer.send(kafka.dlq_topic, b"z" * 10_000, refusable=True)
    producer.flush()  # a dead letter that cannot be kept is not an outage
    assert producer.refused == 1 and producer.failed == 0
    producer.send(kafka.alerts_topic, b"z" * 10_000)
    with pytest.raises(DeliveryError, match="MessageSizeTooLarge"):
        producer.flush()  # anything else that cannot be delivered is never ignored
    producer.close()


def test_the_backoff_keeps_growing_while_the_same_failure_comes_back_after_each_recovery() -> None:
    backoff = Backoff(first_s=1.0, max_s=30.0, quiet_s=300.0)
    waits = []
    for _ in range(7):
        waits.append(backoff.failed(snapshots=4))
        backoff.succeeded(snapshots=4)  # it restored and read again, but committed nothing past the failure
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    backoff.succeeded(snapshots=5)  # committed past it: the next failure is a new one
    assert backoff.failed(snapshots=5) == 1


def committed(kafka: KafkaSettings) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=list(kafka.bootstrap_servers))
    try:
        offsets = admin.list_group_offsets(kafka.group_id)[kafka.group_id]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == kafka.mentions_topic}


def test_what_was_processed_is_committed_on_the_timer_while_input_is_idle(kafka: KafkaSettings) -> None:
    # After a burst, then quiet, the offsets stayed where they were: outside tools showed lag, and a crash
    # replayed the burst (alerts re-sent, dead letters written twice).
    producer = Producer(kafka)
    listener = listener_for(kafka, producer, snapshot_interval_s=2.0)
    send(kafka, producer, mentions(30, "a"))
    step_until(listener, lambda: listener.stats.consumed >= 30 and listener.stats.snapshots >= 1)
    assert listener.stats.snapshots >= 1
    send(kafka, producer, [*mentions(10, "b"), b"{not json"])  # processed within the interval of that snapshot
    step_until(listener, lambda: listener.stats.consumed >= 41)
    snapshots = listener.stats.snapshots
    step_until(listener, lambda: listener.stats.snapshots > snapshots, timeout_s=10.0)  # nothing more arrives
    assert sum(committed(kafka).values()) == 41, "the idle listener did not commit what it processed"
    listener.close()
    producer.close()


def test_a_listener_whose_broker_lost_the_topics_recreates_them_and_goes_on(kafka: KafkaSettings) -> None:
    # An embedded broker that restarts keeps nothing; the listener's next restore read a state topic that no
    # longer existed and died ("topic 'crisiswatch.state' has no partition 0").  Here the state topic is
    # missing from the start, which is the same restore against the same empty broker.
    kafka = replace(kafka, state_topic=f"{kafka.state_topic}-lost", dlq_topic=f"{kafka.dlq_topic}-lost")
    producer = Producer(kafka)
    send(kafka, producer, [*mentions(10), b"{not json"])
    listener = listener_for(kafka, producer)
    step_until(listener, lambda: listener.stats.consumed >= 11)
    listener.close()
    assert listener.pipeline.counters.processed == 10
    assert len(read_all(kafka, kafka.dlq_topic, timeout_s=15)) == 1
    assert read_all(kafka, kafka.state_topic, timeout_s=15), "no snapshot was written"
    producer.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_compression_type_the_config_accepts_works_end_to_end(kafka: KafkaSettings, codec: str) -> None:
    kafka = replace(kafka, compression_type=codec)  # the listener's own alerts, dead letters and state too
    producer = Producer(kafka)
    send(kafka, producer, [*mentions(20), b"{not json"])
    listener = listener_for(kafka, producer)
    step_until(listener, lambda: listener.stats.consumed >= 21)
    listener.close()
    assert listener.pipeline.counters.processed == 20 and listener.stats.broker_errors == 0
    assert len(read_all(kafka, kafka.dlq_topic, timeout_s=15)) == 1
    assert read_all(kafka, kafka.state_topic, timeout_s=15)
    producer.close()


def test_a_batch_the_client_cannot_decode_is_dead_lettered_and_the_partition_goes_on(
        kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    # One snappy batch from another producer (kcat) with no snappy codec installed made the listener report
    # "Kafka unavailable" and stop every partition.  The codecs are installed now; a codec the client still
    # lacks (or a corrupt batch) is simulated by hiding snappy from the consuming side.
    import kafka.codec as codecs

    plain = Producer(kafka)
    foreign = Producer(replace(kafka, compression_type="snappy"))
    send(kafka, plain, mentions(10, "a"))
    send(kafka, foreign, mentions(7, "s"))
    send(kafka, plain, mentions(10, "b"))
    foreign.close()
    monkeypatch.setattr(codecs, "has_snappy", lambda: False)
    stop = threading.Event()
    listener = listener_for(kafka, plain)
    deadline = time.monotonic() + 60
    listener.run(stop, until=lambda: listener.stats.consumed >= 20 or time.monotonic() > deadline)
    assert listener.pipeline.counters.processed == 20, "the records after the bad batch were not read"
    assert listener.stats.dead_letters["undecodable_batch"] == 7 and listener.stats.broker_errors == 0
    (dead,) = read_all(kafka, kafka.dlq_topic, timeout_s=15)
    headers = dict(dead.headers)
    assert headers[REASON_HEADER] == b"undecodable_batch"
    assert headers["crisiswatch-origin"].endswith(b"/10") and b"records 10 to 16" in headers["crisiswatch-detail"]
    assert sum(committed(kafka).values()) == 27  # committed past it: a restart does not meet it again
    plain.close()


def test_a_brand_that_arrives_on_two_partitions_is_counted_and_told_with_the_fix(
        kafka: KafkaSettings, caplog: pytest.LogCaptureFixture) -> None:
    # librdkafka's default partitioner places a brand's key elsewhere than kafka-python's murmur2: one brand's
    # mentions from two kinds of producer land on two partitions, its state split in two
    producer = Producer(kafka)
    for i, m in enumerate(mentions(20)):
        producer.send(kafka.mentions_topic, encode(m), key=b"acme", partition=i % 2)
    producer.flush()
    listener = listener_for(kafka, producer)
    step_until(listener, lambda: listener.stats.consumed >= 20)
    listener.close()
    assert listener.stats.split_brands == {"acme": {0, 1}}
    warnings = [r.getMessage() for r in caplog.records if "arrives on partitions" in r.getMessage()]
    assert len(warnings) == 1 and "partitioner=murmur2_random" in warnings[0]
    producer.close()


def test_a_flood_of_bad_records_is_dead_lettered_in_full_but_logged_in_a_few_lines(
        kafka: KafkaSettings, caplog: pytest.LogCaptureFixture) -> None:
    # one warning line per dead letter made 359k log lines in a brand flood
    producer = Producer(kafka)
    send(kafka, producer, [*mentions(5), *[b"{not json"] * 300])
    listener = listener_for(kafka, producer)
    with caplog.at_level("WARNING", logger="listener.service"):
        listener.run(threading.Event(), until=lambda: listener.stats.consumed >= 305)
    assert len(read_all(kafka, kafka.dlq_topic, timeout_s=15)) == 300
    lines = [r.getMessage() for r in caplog.records if r.name == "listener.service" and "dead letter" in r.getMessage()]
    assert len(lines) == 11 and lines[-1] == "... and 290 more dead letters (invalid_json) in the last minute", lines[-2:]
    producer.close()
