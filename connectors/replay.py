"""File replay: mentions from JSON lines or CSV files.

* JSON lines: one wire-format mention per line (see :mod:`connectors.mention`).
* CSV: a column mapping says which column feeds which wire field, and
  constants fill fields the file does not have (e.g. the brand)::

      FileReplay("tweets.csv", columns={"id": "tweet_id", "text": "text",
                 "created_at": "tweet_created", "author": "name"},
                 constants={"brand": "united", "source": "twitter"},
                 time_format="%Y-%m-%d %H:%M:%S %z")

Timestamps written without a timezone (``2015-02-24 11:35:52``) are read in
``timezone``, an IANA name such as ``"UTC"`` or ``"America/New_York"`` (daylight
saving applied); a timestamp that carries its own offset keeps it.  Without
``timezone`` such a timestamp is rejected (``bad_timestamp``, with the fix),
except with ``time_format``, where it has always been read as UTC.

A line or row that is not a valid mention is yielded as
:class:`~connectors.source.Rejected` with its line number and, where the
source's options can fix it, the fix — never skipped silently.  Pacing
(``speed``) is applied by :func:`~connectors.source.paced`.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from .mention import Mention, MentionError, decode, from_dict
from .source import Item, Rejected, Rejections

_INT_FIELDS = ("reach",)
_BOOL_FIELDS = ("is_repost",)


class NaiveTimestamp(MentionError):
    """A timestamp without a timezone, in a file source that was not told which zone its file was written in."""


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA: ``UTC``, ``Europe/Paris``...); ``ValueError`` naming the fix."""
    try:
        return UTC if name.strip().upper() == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as \"UTC\", \"Europe/London\" or "
                         "\"America/New_York\"") from None


class FileReplay:
    def __init__(
        self,
        path: str | Path,
        format: str | None = None,
        columns: Mapping[str, str] | None = None,
        constants: Mapping[str, object] | None = None,
        time_format: str | None = None,
        timezone: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = format or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        if self.format not in ("csv", "jsonl"):
            raise ValueError(f"format must be 'csv' or 'jsonl', got {self.format!r}")
        self.columns = dict(columns or {})
        self.constants = dict(constants or {})
        self.time_format = time_format
        self.zone = zone(timezone) if timezone is not None else None
        self.name = f"file:{self.path.name}"

    def check(self) -> None:
        """Fail now (``ValueError``) on what would stop the replay after it started: a CSV column the
        mapping names that the file's header does not have."""
        if self.format == "csv":
            with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as f:
                self._check_header(csv.DictReader(f).fieldnames)

    def _check_header(self, header: Sequence[str] | None) -> None:
        missing = [c for c in self.columns.values() if c not in (header or [])]
        if missing:
            raise ValueError(f"columns {missing} are not in the header of {self.path}: {list(header or [])} "
                             "(check the columns mapping)")

    def sample(self, limit: int = 1000) -> tuple[int, Rejections]:
        """Read the first ``limit`` items as the replay would: how many, and what it rejected (``sources``)."""
        rejections = Rejections()
        read = 0
        for item in itertools.islice(self.items(), limit):
            read += 1
            if isinstance(item, Rejected):
                rejections.add(item)
        return read, rejections

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
                    if self.constants or self.zone is not None:
                        obj = orjson.loads(line)
                        if isinstance(obj, dict):
                            obj = {**self.constants, **obj}
                            if "created_at" in obj:
                                obj["created_at"] = self._localise(obj["created_at"])
                        yield from_dict(obj)
                    else:
                        yield decode(line)
                except orjson.JSONDecodeError as exc:
                    yield Rejected(line, "invalid_json", str(exc), f"{self.name}:{number}", self._fix("invalid_json"))
                except MentionError as exc:
                    yield Rejected(line, exc.reason, str(exc), f"{self.name}:{number}", self._fix(exc))

    def _csv(self) -> Iterator[Item]:
        with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            reader = csv.DictReader(f)
            self._check_header(reader.fieldnames)
            for number, row in enumerate(reader, 2):
                try:
                    yield self._row(row)
                except MentionError as exc:
                    raw = orjson.dumps(row, default=str)
                    yield Rejected(raw, exc.reason, str(exc), f"{self.name}:{number}", self._fix(exc))

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
                    moment = moment.replace(tzinfo=self.zone or UTC)
                value = moment.isoformat()
            elif wire == "created_at":
                value = self._localise(value)
            obj[wire] = value
        return from_dict(obj)

    def _localise(self, value: object) -> object:
        """An ISO-8601 timestamp without a timezone, read in ``timezone``; anything else as it is (for the
        mention's own checks)."""
        if not isinstance(value, str) or value.endswith("Z"):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return value
        if self.zone is None:
            raise NaiveTimestamp("bad_timestamp", f"created_at has no timezone: {value[:40]!r}", "created_at")
        return moment.replace(tzinfo=self.zone).isoformat()

    def _fix(self, error: MentionError | str) -> str:
        """What to change in this file source's ``[[sources]]`` table (or in the file) to get the row through."""
        reason = error if isinstance(error, str) else error.reason
        field = None if isinstance(error, str) else error.field
        if isinstance(error, NaiveTimestamp) or "has no timezone" in str(error):
            return ('set timezone = "UTC" in this [[sources]] table, or the zone the file was written in '
                    '(e.g. timezone = "America/New_York")')
        if reason == "bad_timestamp" and self.format == "csv":
            return (f'set time_format to the format of the column (now {self.time_format!r})' if self.time_format
                    else 'set time_format to the format of the column (strptime codes, e.g. "%d/%m/%Y %H:%M")')
        if reason == "missing_field" and field:
            where = f'map a column to it: columns = {{ {field} = "..." }}' if self.format == "csv" else \
                "add it to every line"
            return f'{where}, or give one value for every row: constants = {{ {field} = "..." }}'
        if reason == "invalid_json":
            return "each line must be one JSON object (a mention in the wire format)"
        return ""
