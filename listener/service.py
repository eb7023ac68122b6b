"""The listener: a Kafka consumer-group member that turns mentions into alerts.

One cycle (:meth:`Listener.step`):

1. poll a batch of records (after an assignment, first restore the partitions'
   brands from the state topic and seek to their snapshot);
2. decode each; a record that is not a valid mention goes to the dead-letter
   topic with its reason and origin, and a counter goes up;
3. score the batch with VADER and feed it through the :class:`Pipeline`;
4. emit the resulting alert events to every sink and flush them, and flush
   the dead letters;
5. every ``snapshot_interval_s`` (whether or not the poll returned records):
   write the changed brands' state, flush, and only then commit the offsets.

A crash anywhere before step 5 means the input since the last snapshot is read
again: mentions are at-least-once, alerts are idempotent by id.  When partitions
are revoked in a rebalance, the brands that lived on them are forgotten here;
their new owner restores them from the last snapshot (listener/state.py).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectors.kafka import Batch, BrokerError, Consumer, Position, Producer, UndecodableError, ensure_topics
from connectors.mention import Mention, MentionError, decode
from connectors.publish import send_dead_letter
from detectors import AlertEvent

from .alerts import AlertSink
from .config import Config
from .logs import RateLimitedLog
from . import state
from .pipeline import Pipeline
from .sentiment import Scorer

log = logging.getLogger(__name__)


@dataclass
class ListenerStats:
    """What the listener has done (read by the logs, ``/metrics`` and ``/healthz``; written by the loop only)."""

    consumed: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    """Alert events emitted, by status."""
    batch_seconds: float = 0.0
    """Total time spent processing non-empty batches (poll excluded)."""
    assigned: tuple[Position, ...] = ()
    lag: dict[Position, int] = field(default_factory=dict)
    """Records behind the partition's end, as of the last batch from it."""
    last_poll: float | None = None
    """Wall-clock time of the last poll that returned (records or not): the broker answered."""
    last_commit: float | None = None
    snapshots: int = 0
    last_snapshot: float | None = None
    restored_brands: int = 0
    broker_errors: int = 0
    degraded_since: float | None = None
    """Wall-clock time Kafka started failing; None while it answers."""
    split_brands: dict[str, set[int]] = field(default_factory=dict)
    """Brands seen on more than one partition (their producers partition differently), with the partitions."""


def tune_gc() -> None:
    """Keep the garbage collector from rescanning long-lived state on every cycle.

    The hot path allocates many short-lived objects (mentions, digests) and the
    process holds large long-lived ones (VADER's lexicon, baselines).  Freezing
    what exists after start-up takes it out of every collection, and a larger
    first-generation threshold makes collections rarer.  Measured with
    ``benchmarks/throughput.py``; reference cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)


class Backoff:
    """How long to wait before retrying Kafka: 1 s doubling to 30 s.

    It starts again from 1 s only once the listener has committed past the failure (a snapshot since) or has
    gone ``quiet_s`` without one.  A failure that comes back after every recovery (the same record failing
    again after each restore) must keep backing off, not retry every second forever.
    """

    def __init__(self, first_s: float = 1.0, max_s: float = 30.0, quiet_s: float = 300.0) -> None:
        self.first_s, self.max_s, self.quiet_s = first_s, max_s, quiet_s
        self.next_s = first_s
        self._failed_at: float | None = None
        self._snapshots_at_failure = 0

    def failed(self, snapshots: int) -> float:
        """A failure: the seconds to wait now."""
        wait = self.next_s
        self.next_s = min(2 * wait, self.max_s)
        self._failed_at, self._snapshots_at_failure = time.monotonic(), snapshots
        return wait

    def succeeded(self, snapshots: int) -> None:
        """A cycle went through; ``snapshots`` is the number of snapshots committed so far."""
        if self._failed_at is not None and (snapshots > self._snapshots_at_failure
                                            or time.monotonic() - self._failed_at >= self.quiet_s):
            self.next_s, self._failed_at = self.first_s, None


class Listener:
    def __init__(
        self,
        config: Config,
        producer: Producer,
        sinks: Sequence[AlertSink],
        scorer: Scorer | None = None,
        consumer_factory: Callable[..., Consumer] = Consumer,
        reset_state: bool = False,
    ) -> None:
        self.config = config
        self.producer = producer
        self.sinks = list(sinks)
        self.scorer = scorer or Scorer()
        self.pipeline = Pipeline(config.pipeline, reserved=(str(t.get("name")) for t in config.brands))
        self.stats = ListenerStats()
        self._dead_letter_log = RateLimitedLog(log, "dead letters")
        """At most a few lines a minute per reason: a flood of bad records must not flood the log too."""
        self.reset_state = reset_state
        self._brand_partition: dict[str, Position] = {}
        self._next: dict[Position, int] = {}
        """Per owned partition: the offset after the last record processed."""
        self._marked: dict[Position, int] = {}
        """Per owned partition: the offset of its last snapshot marker (= the committed offset)."""
        self._dirty: set[str] = set()
        """Brands whose state changed since the last snapshot."""
        self._skip: dict[str, int] = {}
        """Restored brands whose state covers more than their partition's marker: skip records below."""
        self._reset_done: set[Position] = set()
        self._to_restore: list[Position] = []
        self._batches_at_error = 0
        self._last_snapshot = time.monotonic()
        self.consumer = consumer_factory(
            config.kafka, [config.kafka.mentions_topic], on_revoke=self._revoked, on_assign=self._assigned
        )

    def _assigned(self, positions: list[Position]) -> None:
        # kafka-python runs rebalance callbacks on its network thread, where blocking calls (reading the
        # state topic, committing) are refused: the restore happens in the next step, before any record of
        # these partitions is processed.
        self._to_restore.extend(p for p in positions if p not in self._to_restore)
        log.info("assigned partitions %s", positions)

    def _revoked(self, positions: list[Position]) -> None:
        """Forget the brands of partitions that move away.

        No snapshot here (blocking calls are refused in the callback): the new owner restores the last
        periodic snapshot and replays at most ``snapshot_interval_s`` of input, re-emitting alerts with
        the same ids.  Every batch is finished before the next poll, so no batch is half-done here.
        """
        gone = set(positions)
        self._to_restore = [p for p in self._to_restore if p not in gone]
        for position in gone:
            self.stats.lag.pop(position, None)
            self._next.pop(position, None)
            self._marked.pop(position, None)
        for brand in [b for b, p in self._brand_partition.items() if p in gone]:
            self.pipeline.brands.pop(brand, None)
            self._skip.pop(brand, None)
            self._dirty.discard(brand)
            del self._brand_partition[brand]
        log.info("revoked partitions %s", positions)

    def _restore(self) -> set[Position]:
        """Restore newly assigned partitions' brands from the state topic and seek to their snapshot
        (listener/state.py); returns the partitions restored."""
        done = set(self._to_restore)
        resets = [p for p in self._to_restore if self.reset_state and p not in self._reset_done]
        for pos in resets:
            self._reset_done.add(pos)
            self.consumer.seek_to_beginning(pos)
            log.warning("partition %s/%d: --reset-state, rebuilding from the beginning of the topic", *pos)
        wanted = [p for p in self._to_restore if p not in resets]
        if self.config.kafka.create_topics:
            # a broker that lost its topics (an embedded broker restarted: it keeps nothing) gets them back
            ensure_topics(self.config.kafka, self.config.kafka.topics)
        snapshots = state.read(self.config.kafka, [p[1] for p in wanted])
        for pos in wanted:
            snap = snapshots[pos[1]]
            for brand, (offset, brand_state) in snap.brands.items():
                self.pipeline.restore(brand, brand_state)
                self._brand_partition[brand] = pos
                if snap.marker is None or offset > snap.marker:
                    self._skip[brand] = offset
            if snap.marker is not None:
                self.consumer.seek(pos, snap.marker)
                self._next[pos] = self._marked[pos] = snap.marker
            else:
                self.consumer.seek_to_committed(pos)
            self.stats.restored_brands += len(snap.brands)
            log.info("partition %s/%d: restored %d brands, resuming at offset %s", *pos, len(snap.brands),
                     snap.marker if snap.marker is not None else "committed")
        self._to_restore = []
        return done

    def snapshot(self, positions: set[Position] | None = None) -> None:
        """Write the changed brands' state and the partitions' markers, flush, then commit the same offsets."""
        owned = [p for p in self._next if positions is None or p in positions]
        pending = [p for p in owned if self._next[p] != self._marked.get(p)]
        if not pending:
            return
        written: list[str] = []
        for pos in pending:
            brands = {b: self.pipeline.brand_state(b) for b in self._dirty
                      if self._brand_partition.get(b) == pos and b in self.pipeline.brands}
            state.write(self.producer, self.config.kafka.state_topic, pos[1], brands, self._next[pos])
            written.extend(brands)
        self.producer.flush()
        offsets = {p: self._next[p] for p in pending}
        self.consumer.commit(offsets)
        self._marked.update(offsets)
        self._dirty.difference_update(written)
        self.stats.snapshots += 1
        self.stats.last_commit = self.stats.last_snapshot = time.time()
        self._last_snapshot = time.monotonic()

    def _snapshot_if_due(self) -> None:
        if time.monotonic() - self._last_snapshot >= self.config.listener.snapshot_interval_s:
            self.snapshot()

    def step(self) -> list[AlertEvent]:
        """One poll-process-emit-commit cycle; returns the alerts it emitted."""
        try:
            batches = self.consumer.poll(timeout_ms=self.config.listener.poll_timeout_ms)
        except UndecodableError as exc:
            self._skip_undecodable(exc)
            return []
        stats = self.stats
        stats.last_poll = time.time()
        stats.assigned = tuple(self.consumer.assignment())
        if self._to_restore:
            restored = self._restore()
            self._batches_at_error = -1  # the state topic was read: Kafka answers again
            # records fetched before the seek start from the committed offset: read them again from the snapshot
            batches = [b for b in batches if b.position not in restored]
        if not batches:
            # input is idle: what was processed is still snapshotted and committed on the timer, so a crash
            # replays at most snapshot_interval_s and outside tools see the real lag
            self._snapshot_if_due()
            return []
        started = time.perf_counter()
        mentions: list[Mention] = []
        rejected = 0
        append = mentions.append
        future = self.config.listener.max_future_minutes
        not_after = time.time() + 60 * future if future else None
        admit = self.pipeline.admit
        skip = self._skip
        for batch in batches:
            first = len(mentions)
            for i, value in enumerate(batch.values):
                try:
                    m = decode(value, not_after)
                    if not admit(m.brand):
                        raise MentionError("brand_limit", f"brand {m.brand[:80]!r} would be brand number "
                                           f"{len(self.pipeline.brands) + 1}; listener.max_brands is "
                                           f"{self.pipeline.settings.max_brands}", "brand")
                    if skip and m.brand in skip and batch.offset(i) < skip[m.brand]:
                        continue  # already in the brand's restored state
                    append(m)
                except MentionError as exc:
                    self._dead_letter(batch, i, exc)
                    rejected += 1
            touched = {m.brand for m in mentions[first:]}
            partition_of = self._brand_partition
            for brand in touched:
                prior = partition_of.get(brand)
                if prior is not None and prior != batch.position:
                    self._split(brand, prior, batch.position)
                partition_of[brand] = batch.position
            self._dirty.update(touched)
            self._next[batch.position] = batch.next_offset
        compounds = self.scorer.score_many([m.text for m in mentions])
        events = self.pipeline.process(mentions, compounds)
        for sink in self.sinks:
            sink.emit(events)
        for sink in self.sinks:
            sink.flush()
        if rejected:
            self.producer.flush()
        self._snapshot_if_due()
        stats.consumed += sum(len(b) for b in batches)
        stats.batches += 1
        stats.alerts.update(e.status.value for e in events)
        for b in batches:
            end = self.consumer.highwater(b.position)
            if end is not None:
                stats.lag[b.position] = max(0, end - b.next_offset)
        stats.batch_seconds += time.perf_counter() - started
        return events

    def _split(self, brand: str, one: Position, other: Position) -> None:
        """A brand arrives on two partitions: its mentions were keyed or partitioned differently by some
        producer (librdkafka's default partitioner hashes keys otherwise than kafka-python and the Java
        client), so its state is split between partitions and possibly listeners, and its baseline sees part
        of the stream.  Counted and told once per brand, with the fix."""
        partitions = self.stats.split_brands.setdefault(brand, set())
        if not partitions:
            log.warning("brand %r arrives on partitions %d and %d of %s: its producers partition it differently "
                        "(set partitioner=murmur2_random in librdkafka-based producers, key every mention by its "
                        "brand); until then its crises are judged on part of its mentions", brand[:80],
                        one[1], other[1], one[0])
        partitions.update((one[1], other[1]))

    def _skip_undecodable(self, exc: UndecodableError) -> None:
        """Records the client cannot decode (a batch compressed with a codec it lacks, a corrupt one) are bad
        input, not an outage: move past them and leave a dead letter that names the offsets (their bytes
        cannot be had without decoding them).  The next snapshot commits past them."""
        for skipped in self.consumer.skip_undecodable():
            (topic, partition), first, end = skipped
            origin = f"{topic}/{partition}/{first}"
            detail = f"records {first} to {end - 1} could not be decoded and were skipped: {exc}"
            send_dead_letter(self.producer, self.config.kafka.dlq_topic, b"", None, "undecodable_batch", detail,
                             origin)
            self.stats.dead_letters["undecodable_batch"] += end - first
            if skipped.position not in self._to_restore:  # (a restore seeks to its snapshot, then skips again)
                self._next[skipped.position] = end
            log.error("partition %s/%d: %s", topic, partition, detail)
        self.producer.flush()

    def _dead_letter(self, batch: Batch, index: int, exc: MentionError) -> None:
        self.stats.dead_letters[exc.reason] += 1
        origin = f"{batch.topic}/{batch.partition}/{batch.offset(index)}"
        send_dead_letter(self.producer, self.config.kafka.dlq_topic, batch.values[index], batch.key(index),
                         exc.reason, str(exc), origin)
        self._dead_letter_log.warning(exc.reason, "dead letter %s: %s", origin, exc)

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> None:
        """Cycle until ``stop`` is set (or ``until()`` is true); then close cleanly.

        A broker that stops answering (a failed delivery, commit or state read) does not end the loop:
        the listener drops what it holds in memory, waits with exponential backoff (:class:`Backoff`)
        and, once Kafka answers again, restores its partitions from the last snapshot and replays from
        there — nothing half-done survives, nothing is lost, alerts keep their ids.
        """
        last_report = time.monotonic()
        backoff = Backoff()
        tune_gc()
        try:
            while not stop.is_set() and not (until and until()):
                try:
                    self.step()
                except (BrokerError, TimeoutError, OSError) as exc:
                    self._degraded(exc)
                    stop.wait(backoff.failed(self.stats.snapshots))
                    continue
                if self.stats.degraded_since is not None and self.stats.batches > self._batches_at_error:
                    log.warning("Kafka answers again after %.0f s: resumed from the last snapshot",
                                time.time() - self.stats.degraded_since)
                    self.stats.degraded_since = None
                backoff.succeeded(self.stats.snapshots)
                self._dead_letter_log.flush()
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    c = self.pipeline.counters
                    log.info("consumed=%d processed=%d dlq=%d late=%d duplicates=%d alerts=%d",
                             self.stats.consumed, c.processed, sum(self.stats.dead_letters.values()),
                             c.late, c.duplicates, c.alerts)
        finally:
            self.close()

    def _degraded(self, exc: BaseException) -> None:
        """Kafka failed mid-cycle: forget everything since the last snapshot and restore it when Kafka is back."""
        stats = self.stats
        stats.broker_errors += 1
        if stats.degraded_since is None:
            stats.degraded_since = time.time()
            log.error("Kafka unavailable (%s): dropping the work since the last snapshot; retrying with backoff",
                      exc)
        else:
            log.warning("Kafka still unavailable (%s)", exc)
        self._to_restore = list(dict.fromkeys([*self._to_restore, *stats.assigned, *self._next]))
        for brand in list(self._brand_partition):
            self.pipeline.brands.pop(brand, None)
        self._brand_partition.clear()
        self._next.clear()
        self._marked.clear()
        self._dirty.clear()
        self._skip.clear()
        self._batches_at_error = stats.batches

    def close(self) -> None:
        """Snapshot and commit what was processed (a clean stop resumes exactly), then leave the group."""
        self._dead_letter_log.flush(force=True)
        try:
            self.snapshot()
        except (BrokerError, TimeoutError) as exc:
            log.error("no snapshot at shutdown (%s): the next start resumes from the last one", exc)
        finally:
            self.consumer.close()
