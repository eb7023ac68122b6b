"""Publishing mentions (and rejected input) to Kafka.

Mentions go to the mentions topic keyed by brand, so one brand's mentions stay
in order on one partition.  Input a source could not use goes to the
dead-letter topic with its reason in headers.  Delivery failures are counted
by the :class:`~connectors.kafka.Producer` and raised at :meth:`flush`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .kafka import KafkaSettings, Producer
from .mention import MAX_MESSAGE_BYTES, Mention, encode
from .source import Item, Rejected

REASON_HEADER = "crisiswatch-reason"
DETAIL_HEADER = "crisiswatch-detail"
ORIGIN_HEADER = "crisiswatch-origin"


TRUNCATED_HEADER = "crisiswatch-truncated-from"
"""On a dead letter whose payload was cut to :data:`DLQ_MAX_BYTES`: the original size in bytes."""
DLQ_MAX_BYTES = MAX_MESSAGE_BYTES
"""The most of a rejected payload a dead letter keeps: the largest valid mention, plenty to see what was wrong."""
DLQ_MAX_KEY_BYTES = 1024


def dlq_headers(reason: str, detail: str, origin: str) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record (shared by ingest, listener and notify)."""
    return [
        (REASON_HEADER, reason.encode()),
        (DETAIL_HEADER, detail[:1000].encode("utf-8", "replace")),
        (ORIGIN_HEADER, origin[:1000].encode("utf-8", "replace")),
    ]


def send_dead_letter(producer: Producer, topic: str, value: bytes | None, key: bytes | None, reason: str,
                     detail: str, origin: str) -> None:
    """Send a copy of a rejected record to the dead-letter topic, small enough to always fit.

    A record of about 1 MiB is accepted by Kafka's default limits, but its copy with our headers is not: the
    copy keeps at most :data:`DLQ_MAX_BYTES` of the payload (and 1 KiB of the key) and says in a header how
    large the original was.  The send is *refusable*: if Kafka still refuses it, it is counted and logged, and
    the caller goes on (:class:`~connectors.kafka.Producer`).
    """
    value = value or b""
    headers = dlq_headers(reason, detail, origin)
    if len(value) > DLQ_MAX_BYTES:
        headers.append((TRUNCATED_HEADER, str(len(value)).encode()))
        value = value[:DLQ_MAX_BYTES]
    if key is not None and len(key) > DLQ_MAX_KEY_BYTES:
        key = key[:DLQ_MAX_KEY_BYTES]
    producer.send(topic, value, key=key, headers=headers, refusable=True)


class MentionPublisher:
    def __init__(self, producer: Producer, settings: KafkaSettings) -> None:
        self.producer = producer
        self.settings = settings
        self.published = 0
        self.rejected = 0

    def publish(self, mention: Mention) -> None:
        self.producer.send(self.settings.mentions_topic, encode(mention), key=mention.brand.encode())
        self.published += 1

    def reject(self, item: Rejected) -> None:
        send_dead_letter(self.producer, self.settings.dlq_topic, item.raw, None, item.reason, item.detail,
                         item.origin)
        self.rejected += 1

    def publish_all(self, items: Iterable[Item]) -> None:
        for item in items:
            if isinstance(item, Mention):
                self.publish(item)
            else:
                self.reject(item)

    def flush(self) -> None:
        self.producer.flush()
