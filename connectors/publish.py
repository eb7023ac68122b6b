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


def dlq_headers(reason: str, detail: str, origin: str) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record (shared by ingest and listener)."""
    return [
        (REASON_HEADER, reason.encode()),
        (DETAIL_HEADER, detail[:1000].encode("utf-8", "replace")),
        (ORIGIN_HEADER, origin.encode("utf-8", "replace")),
    ]


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
        raw, detail = item.raw, item.detail
        if len(raw) > MAX_MESSAGE_BYTES:  # keep the dead-letter topic within Kafka's default message size
            raw, detail = raw[:MAX_MESSAGE_BYTES], f"{detail} (raw input cut from {len(item.raw)} bytes)"
        self.producer.send(self.settings.dlq_topic, raw, key=None,
                           headers=dlq_headers(item.reason, detail, item.origin))
        self.rejected += 1

    def publish_all(self, items: Iterable[Item]) -> None:
        for item in items:
            if isinstance(item, Mention):
                self.publish(item)
            else:
                self.reject(item)

    def flush(self) -> None:
        self.producer.flush()
