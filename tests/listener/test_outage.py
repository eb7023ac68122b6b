"""A broker that goes away and comes back: the listener rides through without a restart.

The embedded broker keeps nothing across a restart (docs/kafka-notes.md): the
broker that comes back is empty — no topics, offsets, groups or snapshots —
and numbers offsets from 0 again, which Apache Kafka never does.  So what is
tested is what can be: the listener's loop survives the outage (no
crash, the errors are counted and it reports itself degraded), and once a
broker answers on the same address again it reconnects, rejoins its group,
restores (from the now empty state topic) and processes what is published
after the restart — without restarting the process.  Against Apache Kafka,
which keeps its data, the same path resumes from the last snapshot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from connectors.kafka import KafkaSettings, Producer, ensure_topics
from connectors.mention import Mention, encode
from listener.alerts import MemorySink
from listener.broker import EmbeddedBroker, free_port
from listener.config import Config, ListenerSettings
from listener.metrics import health
from listener.service import Listener

from ..waiting import wait_until

pytestmark = pytest.mark.broker


def publish(settings: KafkaSettings, brand: str, n: int, partition: int) -> None:
    producer = Producer(settings)
    t = datetime(2026, 11, 23, tzinfo=timezone.utc)
    for i in range(n):
        m = Mention(id=f"{brand}{i}", source="x", brand=brand, text="fine", created_at=t + timedelta(seconds=i))
        producer.send(settings.mentions_topic, encode(m), key=brand.encode(), partition=partition)
    producer.flush()
    producer.close()


def test_the_listener_rides_through_a_broker_restart() -> None:
    port = free_port()
    settings = replace(KafkaSettings(), bootstrap_servers=(f"127.0.0.1:{port}",), enable_idempotence=False,
                       session_timeout_ms=3000, heartbeat_interval_ms=1000, request_timeout_ms=5000,
                       group_id="outage", partitions=2)
    topics = [settings.mentions_topic, settings.alerts_topic, settings.dlq_topic, settings.state_topic]
    config = Config(kafka=settings, listener=ListenerSettings(console=False, poll_timeout_ms=200,
                                                               snapshot_interval_s=0.0, max_future_minutes=0))
    broker = EmbeddedBroker(port=port).start()
    ensure_topics(settings, topics)
    publish(settings, "acme", 200, partition=0)
    producer = Producer(settings, max_block_ms=2000)
    listener = Listener(config, producer, [MemorySink()])
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: listener.stats.consumed >= 200, 90)
        broker.stop()
        stopped = time.time()
        # the loop keeps cycling with no broker (polls come back empty or fail and are retried)
        assert wait_until(lambda: (listener.stats.last_poll or 0) > stopped + 3 or listener.stats.broker_errors > 0,
                          90)
        assert thread.is_alive()
        # the same address, empty (the embedded broker is in memory): nobody recreates the topics, the listener
        # must (it died on "topic 'crisiswatch.state' has no partition 0" before)
        broker = EmbeddedBroker(port=port).start()
        # A fresh broker numbers offsets from 0 again (Apache Kafka never reuses them): publish to the partition
        # the listener has read nothing from, whose position (0) means the same on both brokers.
        publish(settings, "globex", 300, partition=1)
        assert wait_until(lambda: listener.pipeline.counters.processed >= 500, 90), (
            listener.stats, listener.pipeline.counters)
        assert wait_until(lambda: "globex" in listener.pipeline.brands, 90)  # after a replay, restored from its snapshot
        assert thread.is_alive(), "the loop must survive the outage"
        assert wait_until(lambda: listener.stats.degraded_since is None, 90)
        assert health(listener)[0]
    finally:
        stop.set()
        thread.join(30)
        producer.close()
        broker.stop()
