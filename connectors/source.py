"""The source protocol every connector implements, and pacing for replays.

A source yields, in the order it learns of them, :class:`~connectors.mention.Mention`
values and :class:`Rejected` items — input it could not turn into a mention.
Rejected input is not dropped: the ingest loop sends it to the dead-letter
topic with its reason, like the listener does for undecodable messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .mention import Mention


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input a source could not turn into a mention."""

    raw: bytes
    reason: str
    """A short stable code (``invalid_json``, ``missing_field`` ...)."""
    detail: str
    origin: str
    """Where it came from, e.g. ``file:mentions.jsonl:17``."""


Item = Mention | Rejected


@runtime_checkable
class Source(Protocol):
    name: str

    def items(self) -> Iterator[Item]:
        """Yield mentions (and rejects) until the source is exhausted or closed."""
        ...


def paced(
    items: Iterable[Item],
    speed: float | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Item]:
    """Replay items so that event time passes ``speed`` times faster than wall time.

    ``speed`` of ``None`` or ``0`` means as fast as possible.  ``created_at`` is
    never changed: pacing only decides *when* an item is handed on.
    """
    if not speed:
        yield from items
        return
    first_event: float | None = None
    started = clock()
    for item in items:
        if isinstance(item, Mention):
            epoch = item.created_at.timestamp()
            if first_event is None:
                first_event = epoch
            due = started + (epoch - first_event) / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        yield item
