"""Mastodon hashtag and public timelines, polled over REST or followed over the streaming API.

Config (``[[sources]]`` table, ``type = "mastodon"``):

``instance``             base URL of the server, e.g. ``"https://mastodon.social"``, required
``hashtags``             list of hashtags to follow (with or without ``#``), default ``[]``
``public``               also follow the public (federated) timeline, default ``false``;
                         at least one hashtag or ``public = true`` is required
``mode``                 ``"poll"`` (REST timelines every ``interval_s``) or ``"stream"``
                         (server-sent events, REST only to fill gaps), default ``"poll"``
``interval_s``           seconds between polls (poll mode), default 60
``token_env``            name of the environment variable holding an access token, optional
                         in poll mode (needed when the server disables public preview),
                         required in stream mode (Mastodon 4.2+ streams only to user tokens);
                         sent as ``Authorization: Bearer``
``requests_per_minute``  REST budget of this source, default 60 (Mastodon allows 300 requests per
                         5 minutes per token or IP, and 300 paging requests per 15 minutes)
``max_pages``            REST pages (of 40 statuses) per timeline per poll, default 10; a poll
                         that stops there saves its place and the next poll follows at once
``lookback_s``           seconds re-read behind the cursor on every REST read, default 60 (see below)
``streaming_url``        base URL of the streaming server when it is not the instance itself
                         (the instance's ``configuration.urls.streaming``), default ``instance``
``name``                 instance name (checkpoint, health), default ``"mastodon"``

A post from a Status entity:

* ``id`` = ``"mastodon:"`` + the status ``uri`` (its ActivityPub id, the same on every server, so
  one post seen through two instances is one post);
* ``created_at`` = ``created_at`` (for a boost: when it was boosted);
* ``text`` = ``spoiler_text`` (the content warning, plain text) and ``content`` with its HTML
  stripped (links keep their full URL); for a boost, the boosted status's text;
* ``author`` = ``account.acct``; ``reach`` = ``account.followers_count`` (for a boost, the
  booster's: the boost reaches the booster's followers); ``url`` = the status ``url`` (the
  boosted status's, else ``uri``); ``lang`` = ``language``; ``is_repost`` = ``reblog`` is not null.

A status without ``id``, ``uri`` or a valid ``created_at``, one with no text at all (a media-only
post), or an array entry that is not an object, is :class:`~connectors.source.Rejected`
(``missing_field``, ``wrong_type``, ``bad_timestamp``, ``not_an_object``; ``invalid_json`` for a
stream event that is not JSON), never dropped.

Reading a timeline: the cursor is the newest status id seen in that timeline.  Without one (first
start) the source reads the newest page and goes on from there — no backfill.  With one it asks
for ``min_id`` (the statuses immediately newer than the cursor, 40 at a time) and walks forward
through the ``Link: <...>; rel="prev"`` URL (newer results) until a page comes back short,
yielding each page oldest first and saving the cursor after it.  Mastodon gives a status that
arrives late from another server an id from its *publication* time, below ids already handed
out, so a strict cursor would miss it; every read therefore starts ``lookback_s`` behind the
cursor (Mastodon ids are snowflakes: milliseconds << 16), and a persisted
:class:`~connectors.checkpoint.SeenIds` window of status ids drops what was already yielded —
also the same status in two followed timelines.  The checkpoint (``ctx.store()``, under the
source's name) holds the cursor of every timeline and the seen ids; it is saved after each page,
at most every second while streaming, and when the source stops, so a restart yields neither
gaps nor duplicates (a crash between a yield and the next save re-reads, at-least-once).

Rate limits: requests go through :class:`~connectors.http.HttpClient` (token-bucket budget,
backoff, ``Retry-After`` on 429).  Mastodon's own 429 carries no ``Retry-After`` but
``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` on every answer: when ``Remaining`` reaches 0
the source waits until ``Reset`` before its next request.  A hashtag unknown to the server
(404) is an empty timeline, not an error.

Streaming: one ``GET /api/v1/streaming/hashtag?tag=…`` (or ``/public``) per timeline, each read
line by line from a plain :mod:`http.client` response in its own thread.  ``event: update``
carries a Status; ``delete``, ``status.update`` and the other events are ignored; lines starting
with ``:`` are heartbeats.  Every (re)connection is followed by a REST read from the cursor, so
what was posted while the stream was down is not lost; the stream and the REST read overlap and
the seen ids drop the overlap.  A dropped, refused or silent (no heartbeat for
``STREAM_READ_TIMEOUT_S``) stream reconnects with exponential backoff and full jitter.

Documentation followed (docs.joinmastodon.org, from the mastodon/documentation repository):
``methods/timelines`` (``GET /api/v1/timelines/tag/:hashtag``, ``GET /api/v1/timelines/public``,
``max_id`` / ``since_id`` / ``min_id`` / ``limit`` max 40), ``api/guidelines`` ("Paginating
through API responses": the ``Link`` header, ``next`` = older, ``prev`` = newer; "Handling and
sorting IDs"; "Formatting": sanitized HTML, ``invisible`` link spans), ``api/rate-limits``
(``X-RateLimit-*``), ``methods/streaming`` (server-sent events, heartbeat comments,
``event: update``, the ``hashtag`` / ``public`` streams, the user-token requirement since 4.2,
the separate streaming host), ``entities/Status`` and ``entities/Account``; and Mastodon's
``config/initializers/rack_attack.rb`` (the 429 answer and its headers).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import queue
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from .checkpoint import CheckpointStore, SeenIds
from .http import USER_AGENT, HttpClient, Response, SourceUnavailable
from .mention import (
    MAX_FIELD_CHARS,
    MAX_TEXT_CHARS,
    MentionError,
    format_time,
    parse_time,
)
from .options import take
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext
from .text import html_to_text

log = logging.getLogger(__name__)

TYPE = "mastodon"
PAGE_LIMIT = 40
DEFAULT_INTERVAL_S = 60.0
DEFAULT_REQUESTS_PER_MINUTE = 60.0
DEFAULT_MAX_PAGES = 10
DEFAULT_LOOKBACK_S = 60.0
SEEN_CAPACITY = 5000
MAX_RAW_BYTES = 16 * 1024
MAX_RATE_WAIT_S = 15 * 60.0
STREAM_READ_TIMEOUT_S = 60.0
"""Mastodon sends a heartbeat comment every 15 s or so; this long without a byte means the stream is dead."""
STREAM_STABLE_S = 60.0
RECONNECT_BASE_S = 1.0
RECONNECT_MAX_S = 300.0
REFUSED_MIN_S = 60.0
STREAM_QUEUE = 10_000
SAVE_EVERY_S = 1.0
_SNOWFLAKE_MIN_MS = 1_000_000_000_000
"""2001-09-09 in epoch ms: below this a numeric id is not a Mastodon snowflake."""


# -- config ---------------------------------------------------------------------

@dataclass(frozen=True)
class Timeline:
    key: str
    """``"tag:<name>"`` or ``"public"``: the name of its cursor."""
    rest_path: str
    stream_path: str
    is_tag: bool


def hashtag_timeline(tag: str) -> Timeline:
    quoted = urllib.parse.quote(tag, safe="")
    return Timeline(f"tag:{tag.casefold()}", f"/api/v1/timelines/tag/{quoted}",
                    f"/api/v1/streaming/hashtag?tag={quoted}", True)


PUBLIC = Timeline("public", "/api/v1/timelines/public", "/api/v1/streaming/public", False)

_BASE_URL = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")


def _base_url(value: str, key: str, where: str) -> str:
    if not _BASE_URL.fullmatch(value):
        raise SourceConfigError(f"{where}.{key} must be the server's base URL, e.g. \"https://mastodon.social\", "
                                f"got {value!r}")
    return value.rstrip("/")


def _positive(opts: Mapping[str, Any], key: str, default: float, where: str, zero_ok: bool = False) -> float:
    value = float(opts.get(key, default))
    if value < 0 or (value == 0 and not zero_ok):
        raise SourceConfigError(f"{where}.{key} must be {'>= 0' if zero_ok else '> 0'}, got {opts.get(key)!r}")
    return value


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> MastodonSource:
    opts = take(table, where, {"instance": str, "hashtags": list, "public": bool, "mode": str,
                                "interval_s": (int, float), "token_env": str, "requests_per_minute": (int, float),
                                "max_pages": int, "lookback_s": (int, float), "streaming_url": str},
                required=("instance",))
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name.strip():
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    instance = _base_url(opts["instance"], "instance", where)
    timelines: list[Timeline] = []
    for i, tag in enumerate(opts.get("hashtags", [])):
        if not isinstance(tag, str) or not tag.strip().lstrip("#").strip():
            raise SourceConfigError(f"{where}.hashtags[{i}] must be a hashtag such as \"acme\", got {tag!r}")
        clean = tag.strip().lstrip("#").strip()
        if any(ch.isspace() for ch in clean):
            raise SourceConfigError(f"{where}.hashtags[{i}]: a hashtag has no spaces, got {tag!r}")
        timeline = hashtag_timeline(clean)
        if any(t.key == timeline.key for t in timelines):
            raise SourceConfigError(f"{where}.hashtags lists #{clean} twice (hashtags ignore case): remove one")
        timelines.append(timeline)
    if opts.get("public", False):
        timelines.append(PUBLIC)
    if not timelines:
        raise SourceConfigError(f"{where}.hashtags is empty and {where}.public is false: list at least one "
                                "hashtag or set public = true")
    mode = opts.get("mode", "poll")
    if mode not in ("poll", "stream"):
        raise SourceConfigError(f"{where}.mode must be \"poll\" or \"stream\", got {mode!r}")
    interval = _positive(opts, "interval_s", DEFAULT_INTERVAL_S, where)
    rpm = _positive(opts, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, where)
    lookback = _positive(opts, "lookback_s", DEFAULT_LOOKBACK_S, where, zero_ok=True)
    max_pages = opts.get("max_pages", DEFAULT_MAX_PAGES)
    if max_pages < 1:
        raise SourceConfigError(f"{where}.max_pages must be >= 1, got {max_pages!r}")
    streaming = _base_url(opts["streaming_url"], "streaming_url", where) if "streaming_url" in opts else None
    token = ctx.secret(table, "token_env", where, required=False)
    if mode == "stream" and token is None:
        raise SourceConfigError(f"{where}.token_env is required with mode = \"stream\": Mastodon 4.2 and later "
                                "stream only to a user access token (scope read:statuses); set token_env to the "
                                "variable that holds it, or use mode = \"poll\"")
    return MastodonSource(name=name, instance=instance, timelines=timelines, store=ctx.store(), stop=ctx.stop,
                          mode=mode, interval_s=interval, token=token, max_pages=max_pages, lookback_s=lookback,
                          streaming_url=streaming,
                          http=HttpClient(name, requests_per_minute=rpm, stop=ctx.stop))


# -- statuses -------------------------------------------------------------------

def id_key(status_id: str) -> tuple[int, str]:
    """Order of Mastodon ids: longer is newer, then lexical (ids are strings, never cast them)."""
    return len(status_id), status_id


def _status_id(status: object) -> str | None:
    if not isinstance(status, dict):
        return None
    sid = status.get("id")
    if isinstance(sid, int) and not isinstance(sid, bool):
        return str(sid)
    return sid if isinstance(sid, str) and sid.strip() else None


def _raw(status: object, raw: bytes | None) -> bytes:
    data = raw if raw is not None else orjson.dumps(status)
    return data[:MAX_RAW_BYTES]


def status_item(status: object, origin: str, raw: bytes | None = None) -> Post | Rejected:
    """A Status entity as a :class:`Post`, or :class:`Rejected` with the reason it cannot be one."""
    if not isinstance(status, dict):
        return Rejected(_raw(status, raw), "not_an_object",
                        f"a status must be a JSON object, got {type(status).__name__}", origin)
    sid = _status_id(status)

    def reject(reason: str, detail: str) -> Rejected:
        return Rejected(_raw(status, raw), reason, f"status {sid or '?'}: {detail}",
                        f"{origin}#{sid}" if sid else origin)

    if sid is None:
        reason = "missing_field" if status.get("id") in (None, "") else "wrong_type"
        return reject(reason, "id must be a non-empty string")
    uri = status.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        return reject("missing_field" if uri in (None, "") else "wrong_type", "uri must be a non-empty string")
    post_id = f"{TYPE}:{uri}"
    if len(post_id) > MAX_FIELD_CHARS:
        return reject("too_large", f"uri is longer than {MAX_FIELD_CHARS - len(TYPE) - 1} characters")
    if status.get("created_at") is None:
        return reject("missing_field", "created_at is required")
    try:
        created_at = parse_time(status["created_at"])
    except MentionError as exc:
        return reject(exc.reason, str(exc))
    reblog = status.get("reblog")
    if reblog is not None and not isinstance(reblog, dict):
        return reject("wrong_type", f"reblog must be a Status object or null, got {type(reblog).__name__}")
    body = reblog if reblog is not None else status
    content, spoiler = body.get("content"), body.get("spoiler_text")
    for field, value in (("content", content), ("spoiler_text", spoiler)):
        if value is not None and not isinstance(value, str):
            return reject("wrong_type", f"{field} must be a string, got {type(value).__name__}")
    parts = [p for p in ((spoiler or "").strip(), html_to_text(content or "")) if p]
    if not parts:
        return reject("missing_field", "no text: content and spoiler_text are empty (a media-only post?)")
    text = "\n\n".join(parts)[:MAX_TEXT_CHARS]
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    acct = account.get("acct")
    author = acct[:MAX_FIELD_CHARS] if isinstance(acct, str) and acct else None
    followers = account.get("followers_count")
    reach = followers if isinstance(followers, int) and not isinstance(followers, bool) and followers >= 0 else None
    url = None
    for candidate in (body.get("url"), status.get("url"), body.get("uri"), uri):
        if isinstance(candidate, str) and candidate.startswith(("http://", "https://")) \
                and len(candidate) <= MAX_FIELD_CHARS:
            url = candidate
            break
    language = body.get("language")
    lang = language if isinstance(language, str) and 0 < len(language) <= MAX_FIELD_CHARS else None
    return Post(source=TYPE, id=post_id, text=text, created_at=created_at, author=author, url=url, lang=lang,
                reach=reach, is_repost=reblog is not None)


# -- HTTP details ---------------------------------------------------------------

def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


_LINK_PART = re.compile(r"<([^>]*)>([^,<]*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)


def parse_link_header(value: str | None) -> dict[str, str]:
    """``Link: <url>; rel="next", <url>; rel="prev"`` as ``{"next": url, "prev": url}``."""
    links: dict[str, str] = {}
    for match in _LINK_PART.finditer(value or ""):
        rel = _REL.search(match.group(2))
        if rel:
            for name in (rel.group(1) or rel.group(2) or "").split():
                links.setdefault(name.lower(), match.group(1).strip())
    return links


def reset_delay(value: str | None, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (Mastodon: an ISO-8601 time; epoch seconds accepted too)."""
    if not value:
        return None
    value = value.strip()
    try:
        when = float(value) if value.replace(".", "", 1).isdigit() else datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
    return max(0.0, when - now)


def sse_events(lines: Iterable[bytes], on_comment: Callable[[bytes], None] | None = None
               ) -> Iterator[tuple[str, bytes]]:
    """Server-sent events from raw lines: ``(event name, data)`` per blank-line-terminated block.

    Lines starting with ``:`` are comments (Mastodon's heartbeats); ``id`` and ``retry`` fields
    are ignored; several ``data`` lines are joined with ``\\n``.
    """
    event, data = b"", []
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield (event.decode("utf-8", "replace") or "message"), b"\n".join(data)
            event, data = b"", []
            continue
        if line.startswith(b":"):
            if on_comment is not None:
                on_comment(line)
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            event = value
        elif field == b"data":
            data.append(value)


class _StreamRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- the source -----------------------------------------------------------------

class MastodonSource:
    """Hashtag and public timelines of one Mastodon server; yields :class:`Post` and :class:`Rejected`."""

    def __init__(self, name: str, instance: str, timelines: list[Timeline], store: CheckpointStore,
                 stop: threading.Event | None = None, mode: str = "poll",
                 interval_s: float = DEFAULT_INTERVAL_S, token: str | None = None,
                 max_pages: int = DEFAULT_MAX_PAGES, lookback_s: float = DEFAULT_LOOKBACK_S,
                 streaming_url: str | None = None, http: HttpClient | None = None,
                 stream_timeout_s: float = STREAM_READ_TIMEOUT_S, reconnect_base_s: float = RECONNECT_BASE_S,
                 reconnect_max_s: float = RECONNECT_MAX_S, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.instance = instance.rstrip("/")
        self.timelines = list(timelines)
        self.store = store
        self.stop = stop or threading.Event()
        self.mode = mode
        self.interval_s = interval_s
        self._token = token
        self.max_pages = max_pages
        self.lookback_s = lookback_s
        self.streaming_url = (streaming_url or self.instance).rstrip("/")
        self.http = http or HttpClient(name, requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE, stop=self.stop)
        self.stream_timeout_s = stream_timeout_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.clock = clock
        self.rng = rng or random.Random()
        saved = store.load(name)
        self.cursors: dict[str, str] = {k: v for k, v in saved.get("cursors", {}).items() if isinstance(v, str)}
        self.seen = SeenIds(saved.get("seen", []), capacity=SEEN_CAPACITY)
        self.behind = False
        self.polls = 0
        self.items_out = 0
        self.rejected = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_success: str | None = None
        self.rate_limit_waits = 0
        self.connections = 0
        self.heartbeats = 0
        self._dirty = False
        self._saved_at = clock()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()

    # -- the source protocol ----------------------------------------------------

    def items(self) -> Iterator[Item]:
        if self.mode == "stream":
            yield from self._stream_items()
            return
        try:
            while not self.stop.is_set():
                yield from self.poll_once()
                if self.behind and not self.stop.is_set():
                    continue
                if self.stop.wait(self.interval_s):
                    break
        finally:
            self._save_if_dirty()

    def poll_once(self) -> Iterator[Item]:
        """One REST read of every timeline from its cursor; the checkpoint is saved after each page."""
        self.polls += 1
        self.behind = False
        try:
            for timeline in self.timelines:
                if self.stop.is_set():
                    return
                yield from self._read_timeline(timeline, self.max_pages)
        finally:
            self._save_if_dirty()

    def health(self) -> dict[str, Any]:
        cursor = "; ".join(f"{k}={v}" for k, v in sorted(self.cursors.items()))
        return {"polls": self.polls, "items": self.items_out, "errors": self.errors,
                "last_error": self.last_error, "last_success": self.last_success, "cursor": cursor or None,
                "rejected": self.rejected, "rate_limit_waits": self.rate_limit_waits,
                "connections": self.connections, "heartbeats": self.heartbeats, "mode": self.mode}

    # -- REST -------------------------------------------------------------------

    def _read_timeline(self, timeline: Timeline, max_pages: int | None) -> Iterator[Item]:
        """From the cursor (less the lookback) forward through ``rel="prev"`` links until a short page."""
        base = self.instance + timeline.rest_path
        origin = f"{TYPE}:{base}"
        cursor = self.cursors.get(timeline.key)
        first_start = cursor is None
        url: str = base
        params: dict[str, Any] | None = {"limit": PAGE_LIMIT}
        if cursor is not None:
            params["min_id"] = self._start_id(cursor)
        pages = 0
        last_newest: str | None = None
        while not self.stop.is_set():
            try:
                resp = self._get(url, params)
                body = resp.json()
            except SourceUnavailable as exc:
                if self.stop.is_set():
                    return
                status = _status_of(exc)
                if timeline.is_tag and status == 404:
                    self._succeeded()  # a hashtag nobody has used on this server yet
                    return
                hint = " (set token_env: this server requires a token)" if status == 401 else ""
                self._failed(f"{timeline.key}: {exc}{hint}")
                return
            except ValueError as exc:
                self._failed(f"{timeline.key}: {_redact(url)} did not answer JSON: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - e.g. http.client.IncompleteRead: count, retry next poll
                self._failed(f"{timeline.key}: {_redact(url)}: {type(exc).__name__}: {exc}")
                return
            if not isinstance(body, list):
                self._failed(f"{timeline.key}: {_redact(url)} answered a JSON {type(body).__name__}, "
                             "not an array of statuses")
                return
            pages += 1
            ids = [i for i in map(_status_id, body) if i is not None]
            newest = max(ids, key=id_key) if ids else None
            for status in sorted(body, key=lambda s: id_key(_status_id(s) or "")):
                yield from self._accept(status, origin)
            if newest is not None and (cursor is None or id_key(newest) > id_key(cursor)):
                cursor = newest
                self.cursors[timeline.key] = newest
                self._dirty = True
            self._save_if_dirty()
            self._succeeded()
            if first_start:
                return  # the newest page only, no backfill
            if len(body) < PAGE_LIMIT or newest is None:
                return
            if last_newest is not None and id_key(newest) <= id_key(last_newest):
                self._failed(f"{timeline.key}: pagination did not move past {newest}; stopped this read")
                return
            last_newest = newest
            if max_pages is not None and pages >= max_pages:
                self.behind = True
                return
            link = parse_link_header(_header(resp.headers, "Link")).get("prev")
            if link and _same_origin(link, self.instance):
                url, params = link, None
            else:
                url, params = base, {"limit": PAGE_LIMIT, "min_id": newest}

    def _start_id(self, cursor: str) -> str:
        """The cursor moved ``lookback_s`` back in time (snowflake ids only), to catch late arrivals."""
        if self.lookback_s <= 0 or not cursor.isdigit():
            return cursor
        ms = int(cursor) >> 16
        if ms < _SNOWFLAKE_MIN_MS:
            return cursor
        return str((ms - int(self.lookback_s * 1000)) << 16)

    def _get(self, url: str, params: Mapping[str, Any] | None) -> Response:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        resp = self.http.get(url, params=params, headers=headers)
        self._respect_rate_limit(resp)
        return resp

    def _respect_rate_limit(self, resp: Response) -> None:
        remaining = (_header(resp.headers, "X-RateLimit-Remaining") or "").strip()
        if not remaining.isdigit() or int(remaining) > 0:
            return
        delay = reset_delay(_header(resp.headers, "X-RateLimit-Reset"), self.http.wall())
        if delay:
            self.rate_limit_waits += 1
            log.info("%s: rate limit spent, waiting %.0f s for its reset", self.name, delay)
            self.http.sleep(min(delay, MAX_RATE_WAIT_S))

    def _accept(self, status: object, origin: str, raw: bytes | None = None) -> Iterator[Item]:
        """Yield a status once (the seen window drops overlaps between reads, timelines and the stream)."""
        sid = _status_id(status)
        key = sid if sid is not None else "raw:" + hashlib.sha1(_raw(status, raw)).hexdigest()[:20]
        if key in self.seen:
            return
        item = status_item(status, origin, raw)
        self.seen.add(key)
        self._dirty = True
        if isinstance(item, Post):
            self.items_out += 1
        else:
            self.rejected += 1
        yield item

    # -- streaming --------------------------------------------------------------

    def _stream_items(self) -> Iterator[Item]:
        out: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=STREAM_QUEUE)
        halt = threading.Event()
        workers = [threading.Thread(target=self._stream_worker, args=(t, out, halt), daemon=True,
                                    name=f"{self.name}-stream-{t.key}") for t in self.timelines]
        for worker in workers:
            worker.start()
        try:
            while not self.stop.is_set():
                try:
                    message = out.get(timeout=0.2)
                except queue.Empty:
                    self._save_if_dirty(throttled=True)
                    continue
                kind, timeline = message[0], message[1]
                if kind == "connected":
                    self.connections += 1
                    self.polls += 1
                    yield from self._read_timeline(timeline, None)
                elif kind == "update":
                    yield from self._stream_status(timeline, message[2])
                    self._save_if_dirty(throttled=True)
                elif kind == "error":
                    self._failed(message[2])
        finally:
            halt.set()
            self._close_streams()
            self._save_if_dirty()
            for worker in workers:
                worker.join(timeout=2.0)

    def _stream_status(self, timeline: Timeline, data: bytes) -> Iterator[Item]:
        origin = f"{TYPE}:{self.streaming_url}{timeline.stream_path}"
        try:
            status = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield from self._reject_raw(data, origin, exc)
            return
        sid = _status_id(status)
        items = list(self._accept(status, origin, raw=data))
        if sid is not None and (timeline.key not in self.cursors
                                or id_key(sid) > id_key(self.cursors[timeline.key])):
            self.cursors[timeline.key] = sid
            self._dirty = True
        yield from items

    def _reject_raw(self, data: bytes, origin: str, exc: Exception) -> Iterator[Item]:
        key = "raw:" + hashlib.sha1(data[:MAX_RAW_BYTES]).hexdigest()[:20]
        if key in self.seen:
            return
        self.seen.add(key)
        self._dirty = True
        self.rejected += 1
        yield Rejected(data[:MAX_RAW_BYTES], "invalid_json", f"stream event data is not JSON: {exc}", origin)

    def _stream_worker(self, timeline: Timeline, out: queue.Queue[tuple[Any, ...]], halt: threading.Event) -> None:
        """One stream: connect, report, forward ``update`` events; reconnect with backoff until halted."""
        url = self.streaming_url + timeline.stream_path
        attempt = 0
        while not halt.is_set():
            started, delivered, refused = self.clock(), False, False
            sock: socket.socket | None = None
            conn: http.client.HTTPConnection | None = None
            try:
                conn, sock, resp = self._open_stream(timeline)
                self._send(out, halt, ("connected", timeline))
                for event, data in sse_events(iter(resp.readline, b""), self._heartbeat):
                    if halt.is_set():
                        return
                    if event == "update":
                        delivered = True
                        self._send(out, halt, ("update", timeline, data))
                reason = "the server ended the stream"
            except _StreamRefused as exc:
                reason, refused = str(exc), exc.status in (401, 403, 404, 410)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            finally:
                self._forget(sock)
                if conn is not None:
                    conn.close()
            if halt.is_set():
                return
            self._send(out, halt, ("error", timeline, f"{timeline.key}: stream {_redact(url)}: {reason}"))
            if delivered or self.clock() - started >= STREAM_STABLE_S:
                attempt = 0
            attempt += 1
            delay = self.rng.uniform(0, min(self.reconnect_max_s, self.reconnect_base_s * 2 ** (attempt - 1)))
            if refused:
                delay = max(delay, min(self.reconnect_max_s, REFUSED_MIN_S))
            halt.wait(delay)

    def _open_stream(self, timeline: Timeline) -> tuple[http.client.HTTPConnection, socket.socket,
                                                          http.client.HTTPResponse]:
        parts = urllib.parse.urlsplit(self.streaming_url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=self.stream_timeout_s)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            conn.connect()
            sock = conn.sock
            self._remember(sock)
            conn.request("GET", parts.path.rstrip("/") + timeline.stream_path, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status != 200:
            conn.close()
            hint = " (the token is missing, invalid or lacks read:statuses)" if resp.status in (401, 403) else ""
            raise _StreamRefused(resp.status, f"answered {resp.status} {resp.reason}{hint}")
        return conn, sock, resp

    def _heartbeat(self, line: bytes) -> None:
        self.heartbeats += 1

    def _send(self, out: queue.Queue[tuple[Any, ...]], halt: threading.Event, message: tuple[Any, ...]) -> None:
        while not halt.is_set():
            try:
                out.put(message, timeout=0.5)
                return
            except queue.Full:
                continue

    def _remember(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.add(sock)

    def _forget(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.discard(sock)

    def _close_streams(self) -> None:
        """Wake the stream threads out of a blocking read so they see the halt at once."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- bookkeeping ------------------------------------------------------------

    def _save_if_dirty(self, throttled: bool = False) -> None:
        if not self._dirty or (throttled and self.clock() - self._saved_at < SAVE_EVERY_S):
            return
        self.store.save(self.name, {"cursors": dict(self.cursors), "seen": self.seen.to_list()})
        self._dirty = False
        self._saved_at = self.clock()

    def _succeeded(self) -> None:
        self.last_success = format_time(datetime.fromtimestamp(self.http.wall(), timezone.utc))

    def _failed(self, message: str) -> None:
        self.errors += 1
        self.last_error = message if not self._token else message.replace(self._token, "***")
        log.warning("%s: %s", self.name, self.last_error)


def _status_of(exc: SourceUnavailable) -> int | None:
    """The HTTP status that made the client give up (from the message when the exception has none)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    match = re.search(r" answered (\d{3})\b", str(exc))
    return int(match.group(1)) if match else None


def _same_origin(url: str, base: str) -> bool:
    """Only follow a Link to the configured server (the token must not travel elsewhere)."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _redact(url: str) -> str:
    return url.split("?", 1)[0]
