"""The source protocol every connector implements, and pacing for replays.

A source yields, in the order it learns of them, :class:`~connectors.mention.Mention`
values and :class:`Rejected` items — input it could not turn into a mention.
Rejected input is not dropped: the ingest loop sends it to the dead-letter
topic with its reason, like the listener does for undecodable messages.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .checkpoint import CheckpointStore, DeferredCheckpoints
from .mention import Mention
from .post import Post


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input a source could not turn into a mention."""

    raw: bytes
    reason: str
    """A short stable code (``invalid_json``, ``missing_field`` ...)."""
    detail: str
    origin: str
    """Where it came from, e.g. ``file:mentions.jsonl:17``."""
    fix: str = ""
    """What to change so that such input gets through, when the source knows (a file source: an option)."""


Item = Mention | Post | Rejected


class Rejections:
    """What a source rejected, by reason, with the first example of each: the summary a person can act on
    (``ingest``, ``run`` and ``sources`` print it; the dead-letter topic has every record)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, Rejected] = {}

    def add(self, item: Rejected) -> None:
        self.counts[item.reason] += 1
        self.first.setdefault(item.reason, item)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self, source: str, read: int, where: str = "") -> str:
        """``source: R of N read rejected`` then, for each reason (most frequent first), its count, the first
        example and the fix; empty when nothing was rejected."""
        if not self.counts:
            return ""
        lines = [f"{source}: {self.total} of {read} read rejected{f' ({where})' if where else ''}"]
        for reason, n in self.counts.most_common():
            first = self.first[reason]
            lines.append(f"  {reason} {n}, first at {first.origin}: {first.detail[:200]}")
            if first.fix:
                lines.append(f"    fix: {first.fix}")
        return "\n".join(lines)


class SourceConfigError(ValueError):
    """A ``[[sources]]`` table that cannot work: the message names the key and the fix."""


@dataclass
class SourceContext:
    """What a source gets from the ingest process besides its own config table."""

    stop: threading.Event = field(default_factory=threading.Event)
    """Set when the process shuts down: long-running sources wait on it (``stop.wait(interval)``)."""
    checkpoints: CheckpointStore | DeferredCheckpoints | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def secret(self, table: Mapping[str, object], key: str, where: str, required: bool = True) -> str | None:
        """The secret in the environment variable named by ``table[key]`` (never in the file)."""
        var = table.get(key)
        if var is None:
            if required:
                raise SourceConfigError(f"{where}.{key} is required: the name of the environment variable "
                                        "that holds the secret")
            return None
        if not isinstance(var, str) or not var:
            raise SourceConfigError(f"{where}.{key} must be the name of an environment variable")
        value = self.env.get(var)
        if not value:
            raise SourceConfigError(f"{where}.{key}: the environment variable {var} is not set")
        return value

    def store(self) -> CheckpointStore | DeferredCheckpoints:
        if self.checkpoints is None:
            raise SourceConfigError("this source keeps a checkpoint: set [ingest] checkpoint_dir")
        return self.checkpoints


@runtime_checkable
class Source(Protocol):
    name: str

    def items(self) -> Iterator[Item]:
        """Yield mentions, posts and rejects until the source is exhausted or ``ctx.stop`` is set.

        A source whose items were already acknowledged to a sender (the inbound
        webhook) sets ``drains_on_stop = True``: the ingest then keeps taking its
        items after the stop until the source ends by itself.
        """
        ...


def poll_forever(poll_once: Callable[[], Iterable[Item]], stop: threading.Event,
                 interval_s: float) -> Iterator[Item]:
    """The polling sources' loop: a round of ``poll_once()``, then wait ``interval_s`` or until stopped."""
    while not stop.is_set():
        yield from poll_once()
        if stop.wait(interval_s):
            break


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
