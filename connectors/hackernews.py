"""Hacker News stories and comments, searched through the HN Algolia API.

Each poll asks ``GET {base_url}/search_by_date`` (newest first) once per
configured query, with ``query``, ``tags`` (one tag, or several OR-ed as
``(story,comment)``), ``numericFilters=created_at_i>=N[,created_at_i<=M]``,
``hitsPerPage`` and ``page``, and walks the pages up to the answer's
``nbPages``.  Every request goes through our :class:`~connectors.http.HttpClient`
(budget, backoff, ``Retry-After``).  No key is needed.

Config (``[[sources]]`` table, ``type = "hackernews"``):

``queries``              list of search strings, required (one search per query and poll)
``tags``                 item types, default ``["story", "comment"]``
``interval_s``           seconds between polls, default 120
``base_url``             API root, default ``"https://hn.algolia.com/api/v1"``
``requests_per_minute``  request budget, default 60 (Algolia allows 10,000 an hour per IP)
``hits_per_page``        1..1000, default 100
``lookback_s``           how far back the very first poll of a query reaches, default 3600
``overlap_s``            how far before the cursor each poll re-reads, for items indexed
                         late; duplicates are dropped by the seen ids. Default 120
``name``                 instance name (checkpoint, health), default ``"hackernews"``

A post from a hit: ``id`` = ``"hackernews:"`` + ``objectID``; ``created_at`` =
``created_at_i`` (epoch seconds, UTC); ``text`` = ``title`` and/or
``story_text`` / ``comment_text`` with the HTML stripped; ``author``; ``url`` =
the item's page on news.ycombinator.com (not the linked article); ``reach`` =
``points`` when given (comments have none).  A hit with no ``objectID`` or no
text is :class:`Rejected` as ``missing_field``, one without a usable
``created_at_i`` as ``bad_timestamp``.

Cursor, per query: the newest ``created_at_i`` read (``since``).  The next poll
asks for ``created_at_i >= since - overlap_s``; the persisted seen ids (one
:class:`~connectors.checkpoint.SeenIds` window for the source, so an item that
matches two queries is posted once) drop what was already yielded, including
items in the same second as the cursor.  The checkpoint is saved after every
page.  Because pages run newest-first, ``since`` only moves when a poll has read
every page; an interrupted poll leaves ``upper`` (the oldest ``created_at_i``
read so far) and ``newest`` in the checkpoint, and the next poll (or the next
process) first reads ``[since - overlap_s, upper]`` — so a restart leaves no
gap.  When the API caps pagination (``nbHits`` beyond what ``nbPages`` allows)
the poll continues below the oldest item read.

Documentation followed: the HN Search API page (https://hn.algolia.com/api:
``/search_by_date``, ``tags`` with OR in parentheses, ``numericFilters`` on
``created_at_i``, ``page`` / ``hitsPerPage``; the hit fields ``objectID``,
``created_at_i``, ``title``, ``story_text``, ``comment_text``, ``author``,
``points``, ``url``, ``story_id``; the response fields ``hits``, ``nbHits``,
``page``, ``nbPages``, ``hitsPerPage``) and Algolia's search-parameter reference
for ``numericFilters`` (comma = AND) and the 1,000-hit pagination limit.
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

import orjson

from .checkpoint import CheckpointStore, SeenIds
from .http import HttpClient, SourceUnavailable
from .mention import MAX_FIELD_CHARS, MAX_TEXT_CHARS
from .options import take
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext, poll_forever
from .text import html_to_text

log = logging.getLogger(__name__)

TYPE = "hackernews"
DEFAULT_BASE_URL = "https://hn.algolia.com/api/v1"
DEFAULT_TAGS = ("story", "comment")
DEFAULT_INTERVAL_S = 120.0
DEFAULT_REQUESTS_PER_MINUTE = 60.0
DEFAULT_HITS_PER_PAGE = 100
DEFAULT_LOOKBACK_S = 3600
DEFAULT_OVERLAP_S = 120
SEEN_CAPACITY = 10_000
ITEM_URL = "https://news.ycombinator.com/item?id={}"


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> HackerNewsSource:
    opts = take(table, where, {"queries": list, "tags": list, "interval_s": (int, float), "base_url": str,
                               "requests_per_minute": (int, float), "hits_per_page": int, "lookback_s": int,
                               "overlap_s": int}, required=("queries",))
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name:
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    queries = opts["queries"]
    if not queries:
        raise SourceConfigError(f"{where}.queries is empty: list at least one search string")
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise SourceConfigError(f"{where}.queries[{i}] must be a non-empty string, got {q!r}")
    if len(set(queries)) != len(queries):
        raise SourceConfigError(f"{where}.queries lists the same query twice: remove the duplicate")
    tags = opts.get("tags", list(DEFAULT_TAGS))
    if not tags:
        raise SourceConfigError(f"{where}.tags is empty: use e.g. [\"story\", \"comment\"] or leave it out")
    for i, t in enumerate(tags):
        if not isinstance(t, str) or not re.fullmatch(r"[A-Za-z0-9_]+", t):
            raise SourceConfigError(f"{where}.tags[{i}] must be a tag such as \"story\", \"comment\", "
                                    f"\"show_hn\", \"ask_hn\", got {t!r}")
    base_url = opts.get("base_url", DEFAULT_BASE_URL)
    if not re.match(r"https?://[^/\s]+", base_url):
        raise SourceConfigError(f"{where}.base_url must be an http:// or https:// URL, got {base_url!r}")
    interval = float(opts.get("interval_s", DEFAULT_INTERVAL_S))
    if interval <= 0:
        raise SourceConfigError(f"{where}.interval_s must be > 0 seconds, got {interval!r}")
    rpm = float(opts.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE))
    if rpm <= 0:
        raise SourceConfigError(f"{where}.requests_per_minute must be > 0, got {rpm!r}")
    per_page = opts.get("hits_per_page", DEFAULT_HITS_PER_PAGE)
    if not 1 <= per_page <= 1000:
        raise SourceConfigError(f"{where}.hits_per_page must be between 1 and 1000, got {per_page!r}")
    lookback = opts.get("lookback_s", DEFAULT_LOOKBACK_S)
    if lookback < 0:
        raise SourceConfigError(f"{where}.lookback_s must be >= 0 seconds, got {lookback!r}")
    overlap = opts.get("overlap_s", DEFAULT_OVERLAP_S)
    if overlap < 0:
        raise SourceConfigError(f"{where}.overlap_s must be >= 0 seconds, got {overlap!r}")
    return HackerNewsSource(name=name, queries=queries, store=ctx.store(), stop=ctx.stop, tags=tags,
                            interval_s=interval, base_url=base_url, hits_per_page=per_page,
                            lookback_s=lookback, overlap_s=overlap,
                            http=HttpClient(name, requests_per_minute=rpm, stop=ctx.stop))


class BadResponse(ValueError):
    """An answer that is not a search result (not JSON, no ``hits`` list)."""


class HackerNewsSource:
    """Polls the HN Algolia search per query; yields :class:`Post` and :class:`Rejected`."""

    def __init__(self, name: str, queries: list[str], store: CheckpointStore,
                 stop: threading.Event | None = None, tags: list[str] | tuple[str, ...] = DEFAULT_TAGS,
                 interval_s: float = DEFAULT_INTERVAL_S, base_url: str = DEFAULT_BASE_URL,
                 hits_per_page: int = DEFAULT_HITS_PER_PAGE, lookback_s: int = DEFAULT_LOOKBACK_S,
                 overlap_s: int = DEFAULT_OVERLAP_S, http: HttpClient | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.name = name
        self.queries = list(queries)
        self.store = store
        self.stop = stop or threading.Event()
        self.tags = list(tags)
        self.interval_s = interval_s
        self.endpoint = base_url.rstrip("/") + "/search_by_date"
        self.hits_per_page = hits_per_page
        self.lookback_s = lookback_s
        self.overlap_s = overlap_s
        self.http = http or HttpClient(name, requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE)
        self.wall = wall
        saved = store.load(name)
        self.cursors: dict[str, dict[str, int | None]] = {
            q: {k: saved.get("queries", {}).get(q, {}).get(k) for k in ("since", "upper", "newest")}
            for q in self.queries}
        self.seen = SeenIds(saved.get("seen", []), capacity=SEEN_CAPACITY)
        self.polls = 0
        self.items_out = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_success: str | None = None

    # -- the source protocol ----------------------------------------------------

    def items(self) -> Iterator[Item]:
        return poll_forever(self.poll_once, self.stop, self.interval_s)

    def poll_once(self) -> Iterator[Item]:
        """One search per query, every page; the checkpoint is saved after each page."""
        self.polls += 1
        for query in self.queries:
            if self.stop.is_set():
                return
            try:
                yield from self._poll_query(query)
            except Exception as exc:  # noqa: BLE001 - SourceUnavailable, BadResponse, http.client errors
                if self.stop.is_set():
                    return
                self.errors += 1
                self.last_error = f"query {query!r}: {exc}" if isinstance(exc, (SourceUnavailable, BadResponse)) \
                    else f"query {query!r}: {type(exc).__name__}: {exc}"
                log.warning("%s: %s", self.name, self.last_error)
            else:
                self.last_success = datetime.fromtimestamp(self.wall(), timezone.utc).isoformat() \
                    .replace("+00:00", "Z")

    def health(self) -> dict[str, Any]:
        cursor = "; ".join(f"{q!r}: created_at_i>={c['since']}" + (f" (resuming <= {c['upper']})" if c["upper"]
                                                                     is not None else "")
                           for q, c in self.cursors.items() if c["since"] is not None)
        return {"polls": self.polls, "items": self.items_out, "errors": self.errors,
                "last_error": self.last_error, "last_success": self.last_success, "cursor": cursor or None}

    # -- one query ----------------------------------------------------------------

    def _poll_query(self, query: str) -> Iterator[Item]:
        cur = self.cursors[query]
        if cur["since"] is None:
            cur["since"] = int(self.wall()) - self.lookback_s
        since = int(cur["since"])
        lower = max(0, since - self.overlap_s)
        sweep_upper = cur["upper"]
        while True:
            page, read = 0, 0
            while True:
                if self.stop.is_set():
                    return
                data = self._search(query, lower, sweep_upper, page)
                hits = data["hits"]
                stamps: list[int] = []
                for index, hit in enumerate(hits):
                    item, key, stamp = self._convert(hit, f"{TYPE}:{query}:page{page}#{index}")
                    if stamp is not None:
                        stamps.append(stamp)
                    if key in self.seen:
                        continue
                    if isinstance(item, Post):
                        self.items_out += 1
                    yield item
                    self.seen.add(key)
                read += len(hits)
                if stamps:
                    cur["newest"] = max(cur["newest"] or 0, *stamps)
                    cur["upper"] = min(stamps) if cur["upper"] is None else min(cur["upper"], *stamps)
                self._save()
                page += 1
                pages = data.get("nbPages")
                if not hits or not isinstance(pages, int) or page >= pages:
                    break
            total = data.get("nbHits")
            if not (isinstance(total, int) and total > read and cur["upper"] is not None):
                break
            # capped: go on below the oldest item read (past its second if that made no progress)
            below = cur["upper"] if sweep_upper is None or cur["upper"] < sweep_upper else sweep_upper - 1
            if below < lower:
                break
            sweep_upper = below
        cur["since"] = max(since, cur["newest"] or 0)
        cur["upper"] = cur["newest"] = None
        self._save()

    def _search(self, query: str, lower: int, upper: int | None, page: int) -> dict[str, Any]:
        filters = f"created_at_i>={lower}" + (f",created_at_i<={upper}" if upper is not None else "")
        tags = self.tags[0] if len(self.tags) == 1 else "(" + ",".join(self.tags) + ")"
        resp = self.http.get(self.endpoint, params={"query": query, "tags": tags, "numericFilters": filters,
                                                    "hitsPerPage": self.hits_per_page, "page": page})
        try:
            data = resp.json()
        except ValueError:
            raise BadResponse(f"answer to page {page} is not JSON: {resp.body[:80]!r}") from None
        if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
            raise BadResponse(f"answer to page {page} has no 'hits' list: {resp.body[:80]!r}")
        return data

    def _convert(self, hit: Any, origin: str) -> tuple[Item, str, int | None]:
        """The hit as a Post (or Rejected), the key it is remembered by, and its created_at_i."""
        raw = orjson.dumps(hit, default=str)
        if not isinstance(hit, dict):
            return Rejected(raw, "wrong_type", "a hit must be a JSON object", origin), _digest(raw), None
        object_id = hit.get("objectID")
        if isinstance(object_id, int) and not isinstance(object_id, bool):
            object_id = str(object_id)
        stamp = hit.get("created_at_i")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
            stamp = None
        if not isinstance(object_id, str) or not object_id.strip():
            return Rejected(raw, "missing_field", "hit has no objectID", origin), _digest(raw), stamp
        post_id = f"{TYPE}:{object_id.strip()}"
        if stamp is None:
            return (Rejected(raw, "bad_timestamp", f"{post_id}: created_at_i is missing or not epoch seconds: "
                             f"{hit.get('created_at_i')!r}", origin), post_id, None)
        try:
            when = datetime.fromtimestamp(stamp, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return Rejected(raw, "bad_timestamp", f"{post_id}: created_at_i out of range: {stamp}", origin), \
                post_id, None
        title = html_to_text(_str(hit.get("title")))
        body = html_to_text(_str(hit.get("story_text")) or _str(hit.get("comment_text")))
        text = "\n\n".join(p for p in (title, body) if p)[:MAX_TEXT_CHARS]
        if not text:
            return Rejected(raw, "missing_field", f"{post_id}: no title, story_text or comment_text", origin), \
                post_id, stamp
        author = _str(hit.get("author"))[:MAX_FIELD_CHARS] or None
        points = hit.get("points")
        reach = points if isinstance(points, int) and not isinstance(points, bool) else None
        url = ITEM_URL.format(object_id.strip())
        return Post(source=TYPE, id=post_id, text=text, created_at=when, author=author,
                    url=url if len(url) <= MAX_FIELD_CHARS else None, reach=reach), post_id, stamp

    def _save(self) -> None:
        self.store.save(self.name, {"queries": self.cursors, "seen": self.seen.to_list()})


def _digest(raw: bytes) -> str:
    return "rejected:" + hashlib.sha1(raw).hexdigest()


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
