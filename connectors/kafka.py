"""The one thin adapter around the Kafka client (kafka-python).

Every other module talks to Kafka through :class:`Producer`, :class:`Consumer`
and :func:`ensure_topics`, and sees only :class:`Record` values and plain
``(topic, partition) -> offset`` mappings — never a kafka-python type.  That
keeps a faster client (e.g. confluent-kafka) a drop-in option later.

Client settings follow ``docs/kafka-notes.md``: short group session timeouts (the
embedded broker takes half the session timeout to form a group), ``earliest``
offset reset (its "latest" offsets are wrong) and, against the embedded
broker, a non-idempotent producer (its producer ids do not survive a restart).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
    UnsupportedCodecError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

log = logging.getLogger(__name__)

Position = tuple[str, int]
"""A partition of a topic: ``(topic, partition)``."""


@dataclass(frozen=True)
class KafkaSettings:
    """Connection and client settings (the ``[kafka]`` table of the config file).

    An empty ``bootstrap_servers`` means "start the embedded broker".
    """

    bootstrap_servers: tuple[str, ...] = ()
    client_id: str = "crisiswatch"
    mentions_topic: str = "mentions"
    alerts_topic: str = "alerts"
    dlq_topic: str = "mentions.dlq"
    state_topic: str = "crisiswatch.state"
    """Compacted; the listeners' state snapshots, partitioned like the mentions topic."""
    partitions: int = 4
    replication_factor: int = 1
    group_id: str = "crisiswatch-listener"
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 2000
    max_poll_records: int = 5000
    max_poll_interval_ms: int = 300_000
    compression_type: str = "gzip"
    linger_ms: int = 20
    batch_size: int = 262_144
    enable_idempotence: bool = True
    request_timeout_ms: int = 30_000
    security_protocol: str = "PLAINTEXT"
    create_topics: bool = True
    """Create missing topics at start-up (turn off where the principal may not create topics)."""
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """kafka-python options for every client (producer, consumer, admin): TLS and SASL settings.
    Not shown in the settings' repr, since it may hold a password."""
    producer: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """kafka-python options for producers only (e.g. ``max_request_size``)."""
    consumer: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """kafka-python options for consumers only (e.g. ``fetch_max_bytes``)."""

    @property
    def embedded(self) -> bool:
        return not self.bootstrap_servers

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic crisiswatch uses (what :func:`ensure_topics` creates when ``create_topics`` is on)."""
        return (self.mentions_topic, self.alerts_topic, self.dlq_topic, self.state_topic)

    def _common(self) -> dict[str, Any]:
        if not self.bootstrap_servers:
            raise ValueError("KafkaSettings.bootstrap_servers is empty: start the embedded broker first")
        opts: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        opts.update(self.extra)
        return opts


class Record(NamedTuple):
    """A consumed message, free of client types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...]


class Batch:
    """The records one poll returned for one partition, in offset order.

    ``values`` is built eagerly (the listener decodes every one); offsets and
    keys are read on demand, since only dead letters and the commit need them.
    The listener's hot path reads tens of thousands of values a second, and one
    object per record would cost more than decoding the record itself.
    """

    __slots__ = ("topic", "partition", "values", "_records")

    def __init__(self, topic: str, partition: int, records: list[Any]) -> None:
        self.topic = topic
        self.partition = partition
        self._records = records
        self.values: list[bytes | None] = [r.value for r in records]

    def __len__(self) -> int:
        return len(self._records)

    @property
    def position(self) -> Position:
        return (self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        return int(self._records[-1].offset) + 1

    def offset(self, index: int) -> int:
        return int(self._records[index].offset)

    def key(self, index: int) -> bytes | None:
        return self._records[index].key  # type: ignore[no-any-return]


class BrokerError(RuntimeError):
    """Kafka did not do what was asked (unreachable, a commit refused): the caller may retry later."""


class DeliveryError(BrokerError):
    """Raised by :meth:`Producer.flush` when messages could not be delivered."""


class UndecodableError(RuntimeError):
    """A poll met records the client cannot decode (a codec it lacks, a corrupt batch): bad input, not an
    outage.  :meth:`Consumer.skip_undecodable` moves past them."""


class Skipped(NamedTuple):
    """Records :meth:`Consumer.skip_undecodable` moved past: offsets ``first`` to ``next_offset - 1``."""

    position: Position
    first: int
    next_offset: int


UNDECODABLE = (UnsupportedCodecError, CorruptRecordError)

REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)
"""Errors that refuse one record for what it is (too large, invalid), not because Kafka is away: sending it
again can never succeed, and waiting for Kafka to "come back" would wait forever."""


class Producer:
    """A producer that counts every delivery failure and reports it at flush.

    Sends are asynchronous and batched; :meth:`flush` waits for all of them and
    raises :class:`DeliveryError` if any failed since the previous flush, so a
    caller can never mistake a failed send for a delivered one.

    A send marked ``refusable`` (a dead letter: a copy kept for people to look at) that Kafka refuses for
    what it is (:data:`REFUSED`) is counted in ``refused`` and logged as an error instead: a record that
    cannot be dead-lettered must not look like an outage, or the caller would replay it forever.
    """

    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        opts = settings._common()
        opts.update(
            acks="all",
            linger_ms=settings.linger_ms,
            batch_size=settings.batch_size,
            compression_type=None if settings.compression_type == "none" else settings.compression_type,
            enable_idempotence=settings.enable_idempotence,
        )
        opts.update(settings.producer)
        opts.update(overrides)
        self._producer = KafkaProducer(**opts)
        self._lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.refused = 0
        self._errors: list[str] = []

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
        partition: int | None = None,
        refusable: bool = False,
    ) -> None:
        failure = self._failure_or_refusal if refusable else self._failure
        try:
            future = self._producer.send(
                topic, value=value, key=key, headers=list(headers), timestamp_ms=timestamp_ms, partition=partition
            )
        except KafkaError as exc:
            failure(exc)
            return
        self.sent += 1
        future.add_callback(self._success)
        future.add_errback(failure)

    def _success(self, _metadata: object) -> None:
        with self._lock:
            self.delivered += 1

    def _failure_or_refusal(self, exc: BaseException) -> None:
        if not isinstance(exc, REFUSED):
            self._failure(exc)
            return
        with self._lock:
            self.refused += 1
        log.error("kafka refused a record for good, it is not kept (%s: %s)", type(exc).__name__, exc)

    def _failure(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if len(self._errors) < 20:
                self._errors.append(f"{type(exc).__name__}: {exc}")
        log.error("kafka delivery failed: %s", exc)

    def flush(self, timeout_s: float | None = 60.0) -> None:
        """Wait for every pending send; raise :class:`DeliveryError` if any failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"flush failed: {exc}") from exc
        with self._lock:
            errors, self._errors = self._errors, []
            if errors:
                raise DeliveryError(f"{len(errors)} message(s) not delivered; first: {errors[0]}")

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout=timeout_s)


class Consumer:
    """A consumer-group member with manual commits.

    ``on_assign`` / ``on_revoke`` receive lists of ``(topic, partition)``;
    revocation is called before partitions move, so the owner can finish its
    work and commit (docs/design.md, "restartable and deterministic").
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        group_id: str | None = None,
        on_assign: Callable[[list[Position]], None] | None = None,
        on_revoke: Callable[[list[Position]], None] | None = None,
        **overrides: Any,
    ) -> None:
        opts = settings._common()
        opts.update(
            group_id=group_id if group_id is not None else settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_poll_records=settings.max_poll_records,
            max_poll_interval_ms=settings.max_poll_interval_ms,
        )
        opts.update(settings.consumer)
        opts.update(overrides)
        self._consumer = KafkaConsumer(**opts)
        self._consumer.subscribe(list(topics), listener=_Rebalance(on_assign, on_revoke))
        self._settings = settings

    def poll(self, timeout_ms: int = 500, max_records: int | None = None) -> list[Batch]:
        """One poll: a batch per partition, records in offset order."""
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except UNDECODABLE as exc:
            raise UndecodableError(f"{type(exc).__name__}: {exc}") from exc
        except KafkaError as exc:
            raise BrokerError(f"poll failed: {exc}") from exc
        return [Batch(tp.topic, tp.partition, records) for tp, records in batches.items() if records]

    def skip_undecodable(self) -> list[Skipped]:
        """Find the owned partitions whose next records cannot be decoded and seek past them.

        The client reads a whole record batch at a time and cannot say which partition failed, nor where the
        batch ends without decoding it.  A probe consumer outside the group tries each partition at its
        position; for one that fails, it finds the first offset after it that decodes (doubling, then
        bisecting: about 2·log2(batch size) fetches) and this consumer seeks there.  Should two undecodable
        batches lie close together, the records between them may be skipped with them: the skipped range is
        returned either way, for the caller to record.
        """
        probe = KafkaConsumer(**self._settings._common(), group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=50)
        skipped: list[Skipped] = []
        try:
            for tp in self._consumer.assignment():
                first = self._consumer.position(tp)
                probe.assign([tp])
                if _decodes(probe, tp, first):
                    continue
                bad, step = first, 1
                while not _decodes(probe, tp, first + step):
                    bad, step = first + step, 2 * step
                good = first + step
                while good - bad > 1:
                    mid = (good + bad) // 2
                    bad, good = (bad, mid) if _decodes(probe, tp, mid) else (mid, good)
                self._consumer.seek(tp, good)
                skipped.append(Skipped((tp.topic, tp.partition), first, good))
        except KafkaError as exc:
            raise BrokerError(f"looking for undecodable records failed: {exc}") from exc
        finally:
            probe.close()
        return skipped

    def poll_raw(self, timeout_ms: int = 500, max_records: int | None = None) -> int:
        """Poll and return only the number of records (for the raw-consumption benchmark)."""
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return sum(len(v) for v in batches.values())

    def commit(self, next_offsets: Mapping[Position, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""
        if not next_offsets:
            return
        try:
            self._consumer.commit(
                {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in next_offsets.items()}
            )
        except KafkaError as exc:
            raise BrokerError(f"commit failed: {exc}") from exc

    def assignment(self) -> list[Position]:
        """The partitions this member owns now (call from the polling thread)."""
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def seek(self, position: Position, offset: int) -> None:
        """Read ``position`` from ``offset`` on (e.g. in ``on_assign``, to resume from a state snapshot)."""
        self._consumer.seek(TopicPartition(*position), offset)

    def seek_to_beginning(self, position: Position) -> None:
        self._consumer.seek_to_beginning(TopicPartition(*position))

    def seek_to_committed(self, position: Position) -> None:
        """Back to the group's committed offset (the beginning if none: ``auto_offset_reset``)."""
        tp = TopicPartition(*position)
        committed = self._consumer.committed(tp)
        if committed is None:
            self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, committed)

    def highwater(self, position: Position) -> int | None:
        """The partition's end offset as of the last fetch (no network); None before the first."""
        return self._consumer.highwater(TopicPartition(*position))

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _decodes(probe: KafkaConsumer, tp: TopicPartition, offset: int, empty_polls: int = 4) -> bool:
    """Does the record at ``offset`` decode?  A partition's end (nothing comes back) counts as yes."""
    probe.seek(tp, offset)
    for _ in range(empty_polls):
        try:
            if probe.poll(timeout_ms=250, max_records=1):
                return True
        except UNDECODABLE:
            return False
    return True


class _Rebalance(ConsumerRebalanceListener):
    def __init__(
        self,
        on_assign: Callable[[list[Position]], None] | None,
        on_revoke: Callable[[list[Position]], None] | None,
    ) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        if self._on_revoke:
            self._on_revoke(sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if self._on_assign:
            self._on_assign(sorted((tp.topic, tp.partition) for tp in assigned))


def ensure_topics(settings: KafkaSettings, topics: Iterable[str], timeout_s: float = 30.0,
                  missing_level: int = logging.WARNING) -> None:
    """Create the topics that do not exist yet (idempotent); the state topic compacted.

    Creating one is logged at ``missing_level``: a warning (a production broker lost or never had it), INFO
    for a broker that was just started empty (the embedded one), where it is expected.

    The state topic is partitioned like the mentions topic: with ``settings.partitions``, or with as many
    partitions as the mentions topic already has (a broker that auto-created it when a producer wrote first).
    Kafka errors are raised as :class:`BrokerError` (the caller retries later).
    """
    try:
        admin = KafkaAdminClient(**{**settings._common(), "request_timeout_ms": int(timeout_s * 1000)})
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka to create topics: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        state_partitions = settings.partitions
        if settings.state_topic not in existing and settings.mentions_topic in existing:
            (described,) = admin.describe_topics([settings.mentions_topic])
            state_partitions = max(state_partitions, len(described["partitions"]))
        new = [
            NewTopic(name, state_partitions if name == settings.state_topic else settings.partitions,
                     settings.replication_factor,
                     topic_configs={"cleanup.policy": "compact"} if name == settings.state_topic else {})
            for name in dict.fromkeys(topics)
            if name not in existing
        ]
        if new:
            log.log(missing_level, "creating missing topics %s", ", ".join(t.name for t in new))
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:
        raise BrokerError(f"could not create topics: {exc}") from exc
    finally:
        admin.close()


def read_partitions(settings: KafkaSettings, positions: Sequence[Position],
                    timeout_s: float = 30.0) -> dict[Position, list[Record]]:
    """Every record of the given partitions, from the beginning to their end as of the read (no group).

    The end is the high-water mark the fetches report (``consumer.highwater``):
    the embedded broker answers "latest" offset queries wrongly (docs/kafka-notes.md),
    so ``end_offsets`` is not used.  One consumer for all of them.  Raises
    ``TimeoutError`` if the ends are not reached in ``timeout_s``, and
    ``ValueError`` if a partition does not exist.
    """
    import time

    out: dict[Position, list[Record]] = {p: [] for p in positions}
    if not positions:
        return out
    consumer = KafkaConsumer(**settings._common(), group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    tps = {TopicPartition(*p): p for p in positions}
    try:
        for topic in {p[0] for p in positions}:
            known = consumer.partitions_for_topic(topic) or set()
            missing = sorted(p for t, p in positions if t == topic and p not in known)
            if missing:
                raise ValueError(f"topic {topic!r} has no partition {missing[0]}")
        consumer.assign(list(tps))
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        pending = set(tps)
        while pending:
            for tp, records in consumer.poll(timeout_ms=100).items():
                out[tps[tp]].extend(Record(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp,
                                           tuple(r.headers or ())) for r in records)
            for tp in list(pending):
                end = consumer.highwater(tp)
                if end is not None and consumer.position(tp) >= end:
                    pending.discard(tp)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"could not read {sorted(tps[tp] for tp in pending)} to the end in {timeout_s:g} s")
        return out
    finally:
        consumer.close()


def read_partition(settings: KafkaSettings, position: Position, timeout_s: float = 30.0) -> list[Record]:
    """:func:`read_partitions` for one partition."""
    return read_partitions(settings, [position], timeout_s)[position]


def read_all(settings: KafkaSettings, topic: str, timeout_s: float = 10.0, idle_s: float = 1.0) -> list[Record]:
    """Read a topic from the beginning until ``idle_s`` passes with nothing new.

    A group-less helper for the CLI, tests and benchmarks (e.g. to collect the
    alerts topic); not for the service loop.
    """
    import time

    consumer = KafkaConsumer(
        topic, **settings._common(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            got = False
            for tp, records in batches.items():
                for r in records:
                    got = True
                    out.append(Record(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp,
                                      tuple(r.headers or ())))
            if got:
                last_new = time.monotonic()
            elif out and time.monotonic() - last_new > idle_s:
                break
    finally:
        consumer.close()
    return out
