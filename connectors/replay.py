"""File replay: mentions from JSON lines or CSV files.

* JSON lines: one wire-format mention per line (see :mod:`connectors.mention`).
* CSV: a column mapping says which column feeds which wire field, and
  constants fill fields the file does not have (e.g. the brand)::

      FileReplay("tweets.csv", columns={"id": "tweet_id", "text": "text",
                 "created_at": "tweet_created", "author": "name"},
                 constants={"brand": "united", "source": "twitter"},
                 time_format="%Y-%m-%d %H:%M:%S %z")

A line or row that is not a valid mention is yielded as
:class:`~connectors.source.Rejected` with its line number, never skipped
silently.  Pacing (``speed``) is applied by :func:`~connectors.source.paced`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import orjson

from .mention import Mention, MentionError, decode, from_dict
from .source import Item, Rejected

_INT_FIELDS = ("reach",)
_BOOL_FIELDS = ("is_repost",)


class FileReplay:
    def __init__(
        self,
        path: str | Path,
        format: str | None = None,
        columns: Mapping[str, str] | None = None,
        constants: Mapping[str, object] | None = None,
        time_format: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = format or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        if self.format not in ("csv", "jsonl"):
            raise ValueError(f"format must be 'csv' or 'jsonl', got {self.format!r}")
        self.columns = dict(columns or {})
        self.constants = dict(constants or {})
        self.time_format = time_format
        self.name = f"file:{self.path.name}"

    def items(self) -> Iterator[Item]:
        if self.format == "jsonl":
            yield from self._jsonl()
        else:
            yield from self._csv()

    def _jsonl(self) -> Iterator[Item]:
        with open(self.path, "rb") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    if self.constants:
                        obj = orjson.loads(line)
                        if isinstance(obj, dict):
                            obj = {**self.constants, **obj}
                        yield from_dict(obj)
                    else:
                        yield decode(line)
                except orjson.JSONDecodeError as exc:
                    yield Rejected(line, "invalid_json", str(exc), f"{self.name}:{number}")
                except MentionError as exc:
                    yield Rejected(line, exc.reason, str(exc), f"{self.name}:{number}")

    def _csv(self) -> Iterator[Item]:
        with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            reader = csv.DictReader(f)
            missing = [c for c in self.columns.values() if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{self.path}: columns {missing} not in the header {reader.fieldnames}")
            for number, row in enumerate(reader, 2):
                try:
                    yield self._row(row)
                except MentionError as exc:
                    raw = orjson.dumps(row, default=str)
                    yield Rejected(raw, exc.reason, str(exc), f"{self.name}:{number}")

    def _row(self, row: Mapping[str, str]) -> Mention:
        obj: dict[str, object] = dict(self.constants)
        for wire, column in self.columns.items():
            value: object = row.get(column)
            if value in ("", None):
                continue
            if wire in _INT_FIELDS:
                try:
                    value = int(float(str(value)))
                except ValueError:
                    raise MentionError("wrong_type", f"{wire} (column {column}) is not a number: {value!r}",
                                       wire) from None
            elif wire in _BOOL_FIELDS:
                value = str(value).strip().lower() in ("1", "true", "yes", "y")
            elif wire == "created_at" and self.time_format:
                try:
                    moment = datetime.strptime(str(value), self.time_format)
                except ValueError:
                    raise MentionError("bad_timestamp", f"created_at {value!r} does not match "
                                       f"{self.time_format!r}", wire) from None
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                value = moment.isoformat()
            obj[wire] = value
        return from_dict(obj)
