"""Where each source resumes after a restart.

A :class:`CheckpointStore` keeps one small JSON document per source in a
directory (``[ingest] checkpoint_dir``), written atomically (temp file +
rename) so a crash never leaves half a checkpoint.  What a source stores is its
own business — a cursor, a "since" id, a timestamp — plus, for sources without
a strictly monotonic cursor, a bounded window of recently seen ids
(:class:`SeenIds`) so that overlapping polls and restarts yield no duplicates.

Order of operations in a connector: yield the posts of a page, *then* save the
cursor past them.  A crash in between re-reads the page (at-least-once), and
the listener drops the duplicates by ``(source, id)``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson


class CheckpointStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        return self.directory / f"{safe}.json"

    def load(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        if not path.exists():
            return {}
        return dict(orjson.loads(path.read_bytes()))

    def updated_at(self, name: str) -> float | None:
        """When the source last saved its checkpoint (epoch seconds), or None if never."""
        path = self._path(name)
        return path.stat().st_mtime if path.exists() else None

    def save(self, name: str, state: dict[str, Any]) -> None:
        path = self._path(name)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps(state))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class DeferredCheckpoints:
    """A checkpoint store whose saves take effect only once what came before them is delivered.

    A source saves its cursor right after yielding a page, but the ingest's
    producer sends asynchronously: writing the cursor then would let a crash
    lose the page.  Saves are therefore held here, and the ingest calls
    :meth:`commit` with the saves it snapshotted *before* a successful
    producer flush — so a cursor never runs ahead of Kafka.  :meth:`load`
    sees a source's own pending save.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def directory(self) -> Path:
        return self.store.directory

    def load(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name in self._pending:
                return dict(self._pending[name])
        return self.store.load(name)

    def save(self, name: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._pending[name] = dict(state)

    def updated_at(self, name: str) -> float | None:
        return self.store.updated_at(name)

    def pending(self) -> dict[str, dict[str, Any]]:
        """Snapshot of the saves waiting for delivery (take it before flushing the producer)."""
        with self._lock:
            return dict(self._pending)

    def commit(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """Write the snapshotted saves (their items are delivered); keep newer ones pending."""
        for name, state in snapshot.items():
            self.store.save(name, state)
            with self._lock:
                if self._pending.get(name) is state or self._pending.get(name) == state:
                    del self._pending[name]


class SeenIds:
    """The last ``capacity`` ids, in insertion order (serialisable)."""

    def __init__(self, ids: Iterable[str] = (), capacity: int = 5000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for i in ids:
            self.add(i)

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> bool:
        """Remember ``item``; False if it was already there."""
        if item in self._ids:
            return False
        self._ids[item] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def to_list(self) -> list[str]:
        return list(self._ids)
