"""RSS 2.0 and Atom feeds (news, blogs, review sites) as a polling source.

Each poll fetches every configured feed through our :class:`~connectors.http.HttpClient`
(budget, backoff, ``Retry-After``) with a conditional GET — ``If-None-Match``
with the feed's last ``ETag`` and ``If-Modified-Since`` with its last
``Last-Modified`` — so an unchanged feed costs a 304 and no parsing.  The bytes
are handed to ``feedparser`` (never a URL: feedparser must not do its own
HTTP), which copes with the many dialects and broken feeds of the real web.

Config (``[[sources]]`` table, ``type = "rss"``):

``urls``                 list of feed URLs (http/https), required
``interval_s``           seconds between polls, default 300
``requests_per_minute``  request budget for all the feeds of this source, default 30
``name``                 instance name (checkpoint, health), default ``"rss"``

A post from an entry:

* ``id`` = ``"rss:"`` + the entry's ``<guid>`` / ``<id>`` (fallback: its link);
* ``created_at`` = ``<pubDate>`` / ``<published>``, else ``<updated>``, in UTC;
  an entry with neither (or only unparseable ones) is :class:`Rejected` with
  reason ``bad_timestamp``; one with no id and no link, or no text, with
  ``missing_field``;
* ``text`` = title and summary (Atom: content when there is no summary), HTML
  stripped to plain text;
* ``author``, ``url`` = the entry's link; no ``reach`` (feeds offer none).

Feeds re-list their recent entries on every change, so each feed keeps a
persisted :class:`~connectors.checkpoint.SeenIds` window (rejected entries are
remembered too, so a bad entry goes to the dead-letter topic once).  The
checkpoint (``ctx.store()``, under the source's name) holds, per feed URL, the
ETag, the Last-Modified value and the seen ids; it is saved after the posts of
each feed have been yielded, so a restart re-reads at most one feed document
(at-least-once; duplicates are dropped by ``(source, id)`` downstream).

Documentation followed: RSS 2.0 specification (``<item>``, ``<guid>``,
``<pubDate>``), RFC 4287 (Atom ``<entry>``, ``<id>``, ``<published>``,
``<updated>``), RFC 9110 §13.1 (``If-None-Match`` / ``If-Modified-Since``,
304 Not Modified), and the feedparser documentation ("ETag and Last-Modified
Headers", "Bozo Detection", the ``entries[i].id / published_parsed /
updated_parsed / summary / content`` reference; parsing from a string with
``response_headers`` for the encoding and the base URI).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import feedparser
import orjson

from .checkpoint import CheckpointStore, SeenIds
from .http import HttpClient, Response, SourceUnavailable
from .mention import MAX_FIELD_CHARS, MAX_TEXT_CHARS
from .options import take
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext, poll_forever
from .text import html_to_text

log = logging.getLogger(__name__)

TYPE = "rss"
DEFAULT_INTERVAL_S = 300.0
DEFAULT_REQUESTS_PER_MINUTE = 30.0
SEEN_PER_FEED = 2000
MAX_RAW_BYTES = 16 * 1024


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> RssSource:
    opts = take(table, where, {"urls": list, "interval_s": (int, float), "requests_per_minute": (int, float)},
                required=("urls",))
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name:
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    urls = opts["urls"]
    if not urls:
        raise SourceConfigError(f"{where}.urls is empty: list at least one feed URL")
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
            raise SourceConfigError(f"{where}.urls[{i}] must be an http:// or https:// URL, got {url!r}")
    if len(set(urls)) != len(urls):
        raise SourceConfigError(f"{where}.urls lists the same feed twice: remove the duplicate")
    interval = float(opts.get("interval_s", DEFAULT_INTERVAL_S))
    if interval <= 0:
        raise SourceConfigError(f"{where}.interval_s must be > 0 seconds, got {interval!r}")
    rpm = float(opts.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE))
    if rpm <= 0:
        raise SourceConfigError(f"{where}.requests_per_minute must be > 0, got {rpm!r}")
    return RssSource(name=name, urls=urls, store=ctx.store(), stop=ctx.stop, interval_s=interval,
                     http=HttpClient(name, requests_per_minute=rpm, stop=ctx.stop))


class RssSource:
    """Polls RSS/Atom feeds; yields :class:`Post` and :class:`Rejected`."""

    def __init__(self, name: str, urls: list[str], store: CheckpointStore, stop: threading.Event | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S, http: HttpClient | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.name = name
        self.urls = list(urls)
        self.store = store
        self.stop = stop or threading.Event()
        self.interval_s = interval_s
        self.http = http or HttpClient(name, requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE)
        self.wall = wall
        saved = store.load(name).get("feeds", {})
        self.feeds: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, SeenIds] = {}
        for url in self.urls:
            st = saved.get(url, {})
            self.feeds[url] = {"etag": st.get("etag"), "modified": st.get("modified")}
            self.seen[url] = SeenIds(st.get("seen", []), capacity=SEEN_PER_FEED)
        self.polls = 0
        self.items_out = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_success: str | None = None

    # -- the source protocol ----------------------------------------------------

    def items(self) -> Iterator[Item]:
        return poll_forever(self.poll_once, self.stop, self.interval_s)

    def poll_once(self) -> Iterator[Item]:
        """One round over every feed: new posts and rejects; checkpoint saved after each feed."""
        self.polls += 1
        for url in self.urls:
            if self.stop.is_set():
                return
            yield from self._poll_feed(url)

    def health(self) -> dict[str, Any]:
        cursor = "; ".join(f"{_redact(u)} etag={st['etag']!r} modified={st['modified']!r}"
                           for u, st in self.feeds.items() if st["etag"] or st["modified"])
        return {"polls": self.polls, "items": self.items_out, "errors": self.errors,
                "last_error": self.last_error, "last_success": self.last_success, "cursor": cursor or None}

    # -- one feed ---------------------------------------------------------------

    def _poll_feed(self, url: str) -> Iterator[Item]:
        state = self.feeds[url]
        headers = {}
        if state["etag"]:
            headers["If-None-Match"] = state["etag"]
        if state["modified"]:
            headers["If-Modified-Since"] = state["modified"]
        try:
            resp = self.http.get(url, headers=headers)
        except SourceUnavailable as exc:
            if self.stop.is_set():
                return
            self._failed(url, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. http.client.IncompleteRead: count, retry next poll
            self._failed(url, f"{_redact(url)}: {type(exc).__name__}: {exc}")
            return
        if resp.status == 304:
            self._succeeded()
            return
        parsed = feedparser.parse(resp.body, response_headers=_parser_headers(url, resp))
        if not parsed.get("version") and not parsed.entries:
            why = parsed.get("bozo_exception") or "not an RSS or Atom document"
            self._failed(url, f"{_redact(url)}: cannot parse the feed: {why}")
            return
        if parsed.get("bozo"):
            log.info("%s: %s is not well-formed (%s); using what could be parsed",
                     self.name, _redact(url), parsed.get("bozo_exception"))
        seen = self.seen[url]
        for index, entry in enumerate(parsed.entries):
            item, key = self._convert(entry, url, index)
            if key in seen:
                continue
            if isinstance(item, Post):
                self.items_out += 1
            yield item
            seen.add(key)
        state["etag"] = _header(resp.headers, "ETag")
        state["modified"] = _header(resp.headers, "Last-Modified")
        self._save()
        self._succeeded()

    def _convert(self, entry: Mapping[str, Any], url: str, index: int) -> tuple[Item, str]:
        """The entry as a Post (or Rejected) and the key it is remembered by."""
        def raw() -> bytes:
            return orjson.dumps(entry, default=str)[:MAX_RAW_BYTES]

        origin = f"{TYPE}:{_redact(url)}#{index}"
        native = _text(_field(entry, "id")) or _text(_field(entry, "link"))
        if not native:
            data = raw()
            key = "rejected:" + hashlib.sha1(data).hexdigest()
            return Rejected(data, "missing_field", "entry has neither an id/guid nor a link", origin), key
        post_id = f"{TYPE}:{native}"
        if len(post_id) > MAX_FIELD_CHARS:
            post_id = f"{TYPE}:sha1:{hashlib.sha1(native.encode()).hexdigest()}"
        when = _entry_time(entry)
        if when is None:
            given = _field(entry, "published") or _field(entry, "updated")
            detail = f"unparseable date {given!r}" if given else "entry has neither a published nor an updated date"
            return Rejected(raw(), "bad_timestamp", f"{post_id}: {detail}", origin), post_id
        title = html_to_text(_text(_field(entry, "title")))
        body = _text(_field(entry, "summary"))
        if not body and _field(entry, "content"):
            body = _text(_field(entry, "content")[0].get("value"))
        body = html_to_text(body)
        parts = [p for p in (title, body) if p]
        if len(parts) == 2 and (body == title or body.startswith(title)):
            parts = [body]
        text = "\n\n".join(parts)[:MAX_TEXT_CHARS]
        if not text:
            return Rejected(raw(), "missing_field", f"{post_id}: entry has neither a title nor a summary",
                            origin), post_id
        link = _text(_field(entry, "link")) or None
        if link and len(link) > MAX_FIELD_CHARS:
            link = None
        author = html_to_text(_text(_field(entry, "author")))[:MAX_FIELD_CHARS] or None
        return Post(source=TYPE, id=post_id, text=text, created_at=when, author=author, url=link), post_id

    # -- bookkeeping ------------------------------------------------------------

    def _save(self) -> None:
        self.store.save(self.name, {"feeds": {
            u: {"etag": self.feeds[u]["etag"], "modified": self.feeds[u]["modified"],
                "seen": self.seen[u].to_list()} for u in self.urls}})

    def _succeeded(self) -> None:
        self.last_success = datetime.fromtimestamp(self.wall(), timezone.utc).isoformat().replace("+00:00", "Z")

    def _failed(self, url: str, message: str) -> None:
        self.errors += 1
        self.last_error = message.replace(url, _redact(url))
        log.warning("%s: %s", self.name, self.last_error)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value or None
    return None


def _parser_headers(url: str, resp: Response) -> dict[str, str]:
    """What feedparser needs from the HTTP answer: the charset, and the base for relative links."""
    out = {"content-location": url}
    ctype = _header(resp.headers, "Content-Type")
    if ctype:
        out["content-type"] = ctype
    return out


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = _field(entry, key)
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=timezone.utc)  # feedparser's struct_time is in UTC
            except (TypeError, ValueError):
                continue
    return None


def _field(entry: Mapping[str, Any], key: str) -> Any:
    """The entry's own value, bypassing feedparser's deprecated key aliases (and their warnings)."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _redact(url: str) -> str:
    """A feed URL without its query string, which may hold a token."""
    return url.split("?", 1)[0]
