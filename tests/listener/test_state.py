"""State snapshots against the real broker: crashes in every window, SIGKILL, a takeover, --reset-state.

The reference is the uninterrupted run: the same mentions through one
:class:`Pipeline` (what the service computes, without the end-of-input
flush).  Every test checks the *set* of alert ids: a crash may re-emit an
alert, with the same id (idempotent downstream), but never lose or change one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from connectors.kafka import Consumer, KafkaSettings, Producer, read_all, read_partition
from connectors.mention import Mention
from connectors.publish import MentionPublisher
from connectors.simulator import demo_simulation
from listener import state
from listener.alerts import KafkaAlertSink
from listener.config import Config, ListenerSettings
from listener.pipeline import Pipeline, PipelineSettings
from listener.sentiment import Scorer
from listener.service import Listener

from ..waiting import wait_until

pytestmark = pytest.mark.broker

MENTIONS: list[Mention] = list(demo_simulation().items())  # type: ignore[arg-type]
HALF = len(MENTIONS) // 2


def reference_ids() -> set[str]:
    pipeline, scorer = Pipeline(PipelineSettings()), Scorer()
    ids: set[str] = set()
    for i in range(0, len(MENTIONS), 2000):
        chunk = MENTIONS[i:i + 2000]
        ids.update(e.id for e in pipeline.process(chunk, scorer.score_many([m.text for m in chunk])))
    return ids


REFERENCE = reference_ids()


class Crash(Exception):
    """The process dies here (fault injection)."""


def config_for(kafka: KafkaSettings, **listener: object) -> Config:
    settings = ListenerSettings(console=False, poll_timeout_ms=200, snapshot_interval_s=0.0, max_future_minutes=0)
    return Config(kafka=kafka, listener=replace(settings, **listener))  # type: ignore[arg-type]


def publish(kafka: KafkaSettings, mentions: list[Mention]) -> None:
    producer = Producer(kafka)
    pub = MentionPublisher(producer, kafka)
    for m in mentions:
        pub.publish(m)
    pub.flush()
    producer.close()


def alert_ids(kafka: KafkaSettings) -> list[str]:
    return [orjson.loads(r.value)["id"] for r in read_all(kafka, kafka.alerts_topic, timeout_s=15)]


def drain(listener: Listener, idle_polls: int = 6, timeout_s: float = 90) -> None:
    """Step until the listener owns partitions and has read everything (several empty polls in a row)."""
    deadline, idle = time.monotonic() + timeout_s, 0
    while idle < idle_polls and time.monotonic() < deadline:
        before = listener.stats.consumed
        listener.step()
        idle = idle + 1 if listener.stats.consumed == before and listener.stats.assigned else 0


def listener_for(config: Config, producer: Producer, **kwargs: object) -> Listener:
    return Listener(config, producer, [KafkaAlertSink(producer, config.kafka.alerts_topic)], **kwargs)  # type: ignore[arg-type]


def test_a_clean_restart_resumes_exactly_and_restores_every_brand(kafka: KafkaSettings) -> None:
    publish(kafka, MENTIONS[:HALF])
    producer = Producer(kafka)
    first = listener_for(config_for(kafka), producer)
    drain(first)
    first.close()
    publish(kafka, MENTIONS[HALF:])
    second = listener_for(config_for(kafka), producer)
    drain(second)
    second.close()
    producer.close()
    assert second.stats.restored_brands == 3
    assert first.stats.consumed + second.stats.consumed == len(MENTIONS)  # nothing read twice
    assert set(alert_ids(kafka)) == REFERENCE


@pytest.mark.parametrize("window", ["after state, before commit", "after alerts, before snapshot"])
def test_a_crash_in_either_window_gives_the_alerts_of_an_uninterrupted_run(kafka: KafkaSettings,
                                                                        window: str) -> None:
    publish(kafka, MENTIONS)
    producer = Producer(kafka)
    commits: list[int] = []

    class CrashingConsumer(Consumer):
        """Dies on its third commit: the state records and markers are on the topic, the offsets are not."""

        def commit(self, next_offsets):  # type: ignore[no-untyped-def]
            commits.append(1)
            if window == "after state, before commit" and len(commits) == 3:
                raise Crash
            super().commit(next_offsets)

    class CrashingSink(KafkaAlertSink):
        """Dies after the first alerts are flushed, before the batch's snapshot."""

        def flush(self) -> None:
            super().flush()
            if window == "after alerts, before snapshot" and self.flushed_alerts:
                raise Crash

        def emit(self, events):  # type: ignore[no-untyped-def]
            super().emit(events)
            self.flushed_alerts = bool(events)

    config = config_for(kafka, snapshot_interval_s=0.0)
    sink = CrashingSink(producer, kafka.alerts_topic)
    sink.flushed_alerts = False
    first = Listener(config, producer, [sink], consumer_factory=CrashingConsumer)
    with pytest.raises(Crash):
        drain(first)
    first.consumer._consumer.close(autocommit=False)  # the process is gone: no snapshot, no commit
    second = listener_for(config, producer)
    drain(second)
    second.close()
    producer.close()
    ids = alert_ids(kafka)
    assert set(ids) == REFERENCE and second.stats.restored_brands > 0


def subprocess_config(kafka: KafkaSettings, tmp_path: Path, **listener: object) -> Path:
    lines = [
        "[kafka]",
        f'bootstrap_servers = ["{kafka.bootstrap_servers[0]}"]',
        f'mentions_topic = "{kafka.mentions_topic}"', f'alerts_topic = "{kafka.alerts_topic}"',
        f'dlq_topic = "{kafka.dlq_topic}"', f'state_topic = "{kafka.state_topic}"', f'group_id = "{kafka.group_id}"',
        "session_timeout_ms = 3000", "heartbeat_interval_ms = 1000", "enable_idempotence = false",
        "[listener]", "console = false", "poll_timeout_ms = 200", "max_future_minutes = 0",
        *(f"{k} = {v}" for k, v in listener.items()),
    ]
    path = tmp_path / "listen.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for_marker(kafka: KafkaSettings, timeout_s: float = 60) -> None:
    def marked() -> bool:
        return any(r.key and r.key.startswith(b"p:") for p in range(kafka.partitions)
                   for r in read_partition(kafka, (kafka.state_topic, p)))

    assert wait_until(marked, timeout_s, interval_s=0.2), "the listener never wrote a snapshot"


def test_sigkill_mid_stream_then_restart_gives_the_same_alerts(kafka: KafkaSettings, tmp_path: Path) -> None:
    publish(kafka, MENTIONS[:HALF])
    cfg = subprocess_config(kafka, tmp_path, snapshot_interval_s=0.2)
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "listen", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_marker(kafka)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    publish(kafka, MENTIONS[HALF:])
    producer = Producer(kafka)
    survivor = listener_for(config_for(kafka), producer)
    drain(survivor)
    survivor.close()
    producer.close()
    assert set(alert_ids(kafka)) == REFERENCE and survivor.stats.restored_brands == 3


def test_two_listeners_share_the_brands_and_the_survivor_takes_over_a_killed_one(kafka: KafkaSettings,
                                                                                 tmp_path: Path) -> None:
    publish(kafka, MENTIONS[:HALF])
    cfg = subprocess_config(kafka, tmp_path, snapshot_interval_s=0.2)
    producer = Producer(kafka)
    config = config_for(kafka)
    survivor = listener_for(config, producer)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [survivor.step() for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "listen", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # the group splits the partitions between the two
        assert wait_until(lambda: 0 < len(survivor.stats.assigned) < kafka.partitions)
        wait_for_marker(kafka)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    publish(kafka, MENTIONS[HALF:])
    # the killed member's partitions move after its session times out
    wait_until(lambda: len(survivor.stats.assigned) == kafka.partitions)
    stop.set()
    thread.join(30)
    assert len(survivor.stats.assigned) == kafka.partitions
    drain(survivor)
    survivor.close()
    producer.close()
    assert set(alert_ids(kafka)) == REFERENCE


def test_reset_state_rebuilds_from_the_beginning_of_the_topic(kafka: KafkaSettings) -> None:
    publish(kafka, MENTIONS)
    producer = Producer(kafka)
    first = listener_for(config_for(kafka), producer)
    drain(first)
    first.close()
    again = listener_for(config_for(kafka), producer, reset_state=True)
    drain(again)
    again.close()
    producer.close()
    assert again.stats.consumed == len(MENTIONS) and again.stats.restored_brands == 0
    assert set(alert_ids(kafka)) == REFERENCE


def test_an_unreadable_state_record_fails_with_the_fix() -> None:
    with pytest.raises(state.StateError, match="--reset-state"):
        state.decode(b"not zlib")
    import zlib

    with pytest.raises(state.StateError, match="v=99"):
        state.decode(zlib.compress(orjson.dumps({"v": 99})))
