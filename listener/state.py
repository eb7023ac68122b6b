"""State snapshots: a brand's buckets and detector, with the input offsets they cover, on a compacted topic.

Why (docs/design.md, "restartable and deterministic"): a listener that crashes,
restarts or loses a partition in a rebalance must not forget its brands'
baselines (two hours of warm-up blind to crises) nor count a mention twice.
The established pattern on Kafka is a changelog: a compacted state topic
partitioned like the input, written before the input offsets are committed,
whose records say which offsets they cover.

The topic (``kafka.state_topic``) has the mentions topic's partition count;
the state of the brands read from mentions partition *p* goes to state
partition *p*.  Two kinds of record, JSON compressed with zlib:

* ``b:<brand>`` — the brand's :class:`~listener.buckets.BrandBuckets` and
  :class:`~detectors.CrisisDetector` state and ``offset``: the next mentions
  offset of its partition when it was taken (everything before is in it);
* ``p:<partition>`` — the marker: ``offset`` of the partition such that every
  brand whose state changed before it has a ``b:`` record written before the
  marker.

A snapshot (every ``listener.snapshot_interval_s``, idle or not, and on
shutdown) writes the brands that changed since the last one, then the
markers, flushes, and only then commits the consumer offsets (the same as the
markers).  On assignment a listener folds the state partition (latest record
per key), restores every brand, and seeks to the marker.  A brand record
newer than the marker (a snapshot cut short after its brand records) covers
more than the marker: that brand skips the mentions below its own offset.
So the restored listener continues exactly where the state left off, and the
alerts are the same as an uninterrupted run's (re-emitted ones keep their
ids; alerts are idempotent downstream).

De-duplication: the memory of mention ids (a day of them, up to hundreds of
thousands) is not snapshotted, but the ids in the brand's open minutes are
(:meth:`~listener.buckets.BrandBuckets.open_ids`), so a mention re-sent after
the restore point is never counted twice: if its minute is still open it is a
duplicate, as in an uninterrupted run; if its minute had closed it is counted
*late* instead of *duplicate* (a counter, not a count the detector sees).
``--reset-state`` ignores the snapshots and
rebuilds every brand from the beginning of the mentions topic.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from connectors.kafka import KafkaSettings, Producer, read_partitions

STATE_VERSION = 1


class StateError(RuntimeError):
    """The state topic holds something this version cannot use: says what and how to recover."""


def encode(doc: Mapping[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps({"v": STATE_VERSION, **doc}), 6)


def decode(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(zlib.decompress(raw))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise StateError(f"a state record cannot be read ({exc}); restart with --reset-state to rebuild") from None
    if doc.get("v") != STATE_VERSION:
        raise StateError(f"state schema v={doc.get('v')!r}, this listener reads v={STATE_VERSION}: restart with "
                         "--reset-state to rebuild the state from the mentions topic")
    return doc


class Snapshot(NamedTuple):
    marker: int | None
    """Where to resume the partition; None = no snapshot was ever completed for it."""
    brands: dict[str, tuple[int, dict[str, Any]]]
    """brand -> (offset its state covers, state)."""


def write(producer: Producer, topic: str, partition: int, brands: Mapping[str, dict[str, Any]], offset: int) -> None:
    """Brand records, then the partition's marker (the caller flushes, then commits)."""
    for brand, state in brands.items():
        producer.send(topic, encode({"brand": brand, "offset": offset, "state": state}),
                      key=f"b:{brand}".encode(), partition=partition)
    producer.send(topic, encode({"partition": partition, "offset": offset}), key=f"p:{partition}".encode(),
                  partition=partition)


def read(settings: KafkaSettings, partitions: Sequence[int]) -> dict[int, Snapshot]:
    """Fold the state partitions (latest record per key), one :class:`Snapshot` each."""
    try:
        records = read_partitions(settings, [(settings.state_topic, p) for p in partitions])
    except ValueError as exc:
        raise StateError(f"{exc}: the state topic {settings.state_topic!r} needs as many partitions as "
                         f"{settings.mentions_topic!r}") from None
    out: dict[int, Snapshot] = {}
    for (_, partition), recs in records.items():
        marker: int | None = None
        brands: dict[str, tuple[int, dict[str, Any]]] = {}
        for r in recs:
            if r.value is None or r.key is None:
                continue
            doc = decode(r.value)
            if r.key.startswith(b"p:"):
                marker = int(doc["offset"])
            else:
                brands[str(doc["brand"])] = (int(doc["offset"]), doc["state"])
        out[partition] = Snapshot(marker, brands)
    return out
