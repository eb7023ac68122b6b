"""Bluesky posts from the Jetstream firehose (JSON over a websocket).

Jetstream turns the AT Protocol repository firehose into plain JSON events.  We
subscribe to ``/subscribe?wantedCollections=app.bsky.feed.post`` and read
events of three kinds: ``commit`` (a record was created, updated or deleted),
``identity`` and ``account`` (which every subscriber receives whatever it
asked for).  A post is a ``commit`` whose ``commit.operation`` is ``create``
and whose ``commit.collection`` is ``app.bsky.feed.post``; its
``commit.record`` holds ``text``, ``createdAt``, ``langs``, ``reply``,
``embed`` ...  Updates, deletes, identity and account events are skipped and
counted in :meth:`BlueskyJetstream.health`.

Documentation followed: the Jetstream README of ``bluesky-social/jetstream``
(query parameters ``wantedCollections``, ``wantedDids``, ``cursor``,
``maxMessageSizeBytes``, ``requireHello``; the example events; "when
reconnecting, use the ``time_us`` from your most recently processed event and
maybe provide a negative buffer"; subscriber-sourced ``options_update``
messages) and the ``app.bsky.feed.post`` lexicon of atproto (``text`` and
``createdAt`` required, ``langs`` up to three BCP-47 tags).

The firehose carries every post on the network, so this source filters before
it yields: a post is kept only if its text contains one of ``keywords``
(case-insensitive substring — a cheap pre-filter; which brand a post is about
is decided later by :class:`~connectors.brands.BrandMatcher`), and, if
``langs`` is set, only if it declares one of those languages.

Config (``[[sources]]`` with ``type = "bluesky"``):

``keywords`` (list of strings, required)
    Substrings to pre-filter on.  List every brand keyword, handle and hashtag
    the brands use ("acme" also catches "@acme.bsky.social" and "#acme").
``url`` (string, default ``"wss://jetstream2.us-east.bsky.network/subscribe"``)
    The Jetstream subscribe endpoint (``ws://`` or ``wss://``).
``langs`` (list of strings, default ``[]`` = every language)
    Keep posts that declare one of these languages; ``"en"`` matches ``en``
    and ``en-US``.  With a filter set, posts that declare no language are
    skipped (counted as ``lang_filtered``).
``dids`` (list of strings, default ``[]`` = every account)
    Only these accounts (Jetstream's ``wantedDids``, at most 10,000; more than
    100 are sent in an ``options_update`` message instead of the URL).
``rewind_s`` (number, default 5)
    How far before the last processed event a reconnect or restart resumes;
    the overlap is de-duplicated with the ids kept in the checkpoint.
``checkpoint_every_s`` (number, default 5)
    How often the cursor is saved while streaming (also on every disconnect
    and on stop).  A crash re-reads at most this much (at-least-once).
``backoff_s`` (number, default 1) and ``max_backoff_s`` (number, default 60)
    Reconnect delay: exponential from ``backoff_s``, capped, with jitter (the
    delay is uniform in [d/2, d]); a 429 on the handshake waits at least its
    ``Retry-After``.
``name`` (string, default ``"bluesky"``)
    The checkpoint and health name.

Post fields: ``id`` = ``"bluesky:" + at://{did}/app.bsky.feed.post/{rkey}``;
``text`` = ``record.text`` (plain text already); ``created_at`` =
``record.createdAt``, but the event's ``time_us`` (when Jetstream saw the
commit) when ``createdAt`` is missing, unparsable, without a timezone, or
later than ``time_us`` — the same "earlier of claimed and indexed time" rule
the Bluesky app view sorts by, so a client's wrong clock cannot date a post in
the future; ``author`` = the DID (events carry no handle); ``url`` =
``https://bsky.app/profile/{did}/post/{rkey}``; ``lang`` = the first of
``langs``; ``reach``: none (the firehose has no follower counts);
``is_repost`` is always false (reposts are ``app.bsky.feed.repost`` records,
which we do not subscribe to).

Rejected (to the dead-letter topic): a message that is not JSON or not an
object, an event without a usable ``kind``/``did``/``time_us``, a commit without
``operation``/``collection``/``rkey``, and a post create whose record is not an
object, has no string ``text``, a text over the wire limit or ids too long for
it.  Posts with an empty text cannot match a keyword and are skipped as
unmatched, not rejected.

Checkpoint (``ctx.store()`` under the source's name): ``cursor`` (the largest
``time_us`` handed on) and ``seen`` (recent post ids).  An item counts as
handed on once the consumer asks for the next one, so an item that was yielded
but not taken (the ingest stopping) is read again after a restart.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import websockets.exceptions
import websockets.sync.client

from .checkpoint import CheckpointStore, SeenIds
from .http import USER_AGENT, retry_after_seconds
from .mention import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    MAX_FIELD_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_CHARS,
    MentionError,
    parse_time,
)
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext

__all__ = ["DEFAULT_URL", "BlueskyJetstream", "build"]

log = logging.getLogger(__name__)

TYPE = "bluesky"
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION = "app.bsky.feed.post"
MAX_DIDS = 10_000
MAX_DIDS_IN_URL = 100
MAX_SERVER_MESSAGE_BYTES = 1 << 20
"""Asked of Jetstream as ``maxMessageSizeBytes``: it leaves out larger events (no post is that large)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]+")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_KINDS_SKIPPED = {"identity": "identity", "account": "account"}

Connect = Callable[..., Any]


class BlueskyJetstream:
    """Posts that contain a keyword, from a Jetstream websocket, with resume and reconnect."""

    def __init__(
        self,
        keywords: Sequence[str],
        *,
        name: str = TYPE,
        url: str = DEFAULT_URL,
        langs: Sequence[str] = (),
        dids: Sequence[str] = (),
        store: CheckpointStore | None = None,
        stop: threading.Event | None = None,
        rewind_s: float = 5.0,
        checkpoint_every_s: float = 5.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        read_timeout_s: float = 1.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        seen_capacity: int = 5000,
        connect: Connect = websockets.sync.client.connect,
        wait: Callable[[float], bool] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        folded = sorted({k.casefold() for k in keywords if k.strip()}, key=len, reverse=True)
        if not folded:
            raise ValueError("keywords must hold at least one non-empty keyword")
        self.name = name
        self.url = url
        self.keywords = tuple(folded)
        self._keyword_re = re.compile("|".join(re.escape(k) for k in folded))
        self.langs = tuple(lang.lower() for lang in langs)
        self.dids = tuple(dids)
        self.store = store
        self.stop = stop or threading.Event()
        self.rewind_us = int(rewind_s * 1_000_000)
        self.checkpoint_every_s = checkpoint_every_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.read_timeout_s = read_timeout_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self._connect = connect
        self.wait = wait or self.stop.wait
        self.rng = rng or random.Random()
        self.clock = clock
        self.wall = wall
        self._netloc = urllib.parse.urlsplit(url).netloc

        state = store.load(name) if store is not None else {}
        cursor = state.get("cursor")
        if cursor is not None and (type(cursor) is not int or cursor <= 0):
            log.warning("%s: ignoring a checkpoint cursor that is not a positive integer: %r", name, cursor)
            cursor = None
        self.cursor: int | None = cursor
        seen = state.get("seen", [])
        self.seen = SeenIds([s for s in seen if isinstance(s, str)] if isinstance(seen, list) else [],
                            capacity=seen_capacity)
        self._dirty = False
        self._saved_at = clock()
        self._attempt = 0
        self._retry_after: float | None = None

        self.polls = 0
        self.events = 0
        self.items_yielded = 0
        self.rejected = 0
        self.errors = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.last_success: str | None = None
        self.skipped: dict[str, int] = dict.fromkeys(
            ("unmatched", "lang_filtered", "duplicate", "update", "delete", "other_collection", "identity",
             "account", "other_kind"), 0)
        self.created_at_fallbacks = 0

    # -- the stream -----------------------------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        """Stream until ``stop`` is set: one connection after another, with backoff in between."""
        try:
            while not self.stop.is_set():
                yield from self.poll_once()
                if self.stop.is_set():
                    break
                self._attempt += 1
                self.reconnects += 1
                delay = self.reconnect_delay(self._attempt)
                log.info("%s: reconnecting in %.1f s (attempt %d)", self.name, delay, self._attempt)
                if self.wait(delay):
                    break
        finally:
            self.save()

    def poll_once(self) -> Iterator[Item]:
        """One connection: connect, resume from the cursor, yield until it drops or ``stop`` is set.

        Connection errors end the generator (counted in :meth:`health`); they are never raised.
        ``stop`` is noticed within ``read_timeout_s``; closing a busy stream can then take up to
        ``close_timeout_s``, because the server's close frame queues behind events not read.
        """
        url, hello = self.subscribe_url(), self._hello()
        self.polls += 1
        self._retry_after = None
        try:
            ws = self._connect(url, open_timeout=self.open_timeout_s, close_timeout=self.close_timeout_s,
                               max_size=2 * MAX_SERVER_MESSAGE_BYTES, user_agent_header=USER_AGENT)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            self._note_handshake_error(exc)
            return
        try:
            with ws:
                if hello is not None:
                    ws.send(hello)
                got_one = False
                while not self.stop.is_set():
                    try:
                        message = ws.recv(timeout=self.read_timeout_s)
                    except TimeoutError:
                        self._maybe_save()
                        continue
                    self.events += 1
                    self.last_success = _iso(self.wall())
                    if not got_one:
                        got_one = True
                        self._attempt = 0
                    item, time_us = self.handle(message)
                    if item is not None:
                        yield item
                        if isinstance(item, Post):
                            self.seen.add(item.id)
                            self.items_yielded += 1
                            self._dirty = True
                        else:
                            self.rejected += 1
                    if time_us is not None and (self.cursor is None or time_us > self.cursor):
                        self.cursor = time_us
                        self._dirty = True
                    self._maybe_save()
        except websockets.exceptions.ConnectionClosed as exc:
            self._error(f"connection to {self._netloc} dropped: {exc}")
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            self._error(f"connection to {self._netloc} failed: {type(exc).__name__}: {exc}")
        finally:
            self.save()

    def subscribe_url(self) -> str:
        """The subscribe URL for the next connection, with the cursor rewound by ``rewind_s``."""
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query.append(("wantedCollections", POST_COLLECTION))
        if self.dids and len(self.dids) <= MAX_DIDS_IN_URL:
            query += [("wantedDids", d) for d in self.dids]
        elif self.dids:
            query.append(("requireHello", "true"))
        query.append(("maxMessageSizeBytes", str(MAX_SERVER_MESSAGE_BYTES)))
        if self.cursor is not None:
            query.append(("cursor", str(max(1, self.cursor - self.rewind_us))))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    def _hello(self) -> str | None:
        if len(self.dids) <= MAX_DIDS_IN_URL:
            return None
        payload = {"wantedCollections": [POST_COLLECTION], "wantedDids": list(self.dids),
                   "maxMessageSizeBytes": MAX_SERVER_MESSAGE_BYTES}
        return orjson.dumps({"type": "options_update", "payload": payload}).decode()

    def reconnect_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter, uniform in [d/2, d]; at least a handshake's ``Retry-After``."""
        cap = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        delay = self.rng.uniform(cap / 2, cap)
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
        return delay

    # -- one event ------------------------------------------------------------------------------------------------

    def handle(self, message: str | bytes) -> tuple[Post | Rejected | None, int | None]:
        """Turn one Jetstream message into a post, a reject or nothing (skipped, counted).

        Also returns the event's ``time_us`` when it has a valid one (the cursor to advance to).
        """
        raw = message.encode("utf-8", "replace") if isinstance(message, str) else bytes(message)
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._reject(raw, "invalid_json", f"not valid JSON: {exc}"), None
        if not isinstance(event, dict):
            return self._reject(raw, "not_an_object", f"event must be a JSON object, got {type(event).__name__}"), None
        time_us = event.get("time_us")
        if type(time_us) is not int:
            return self._reject(raw, "missing_field" if time_us is None else "wrong_type",
                                "time_us must be an integer (unix microseconds)"), None
        try:
            received = _EPOCH + timedelta(microseconds=time_us)
        except OverflowError:
            received = _EPOCH
        if not EARLIEST_YEAR <= received.year <= LATEST_YEAR:
            return self._reject(raw, "bad_timestamp", f"time_us {time_us} is outside {EARLIEST_YEAR}..{LATEST_YEAR}",
                                time_us), None
        kind = event.get("kind")
        if not isinstance(kind, str):
            return self._reject(raw, "missing_field", "kind must be a string", time_us), time_us
        if kind != "commit":
            self.skipped[_KINDS_SKIPPED.get(kind, "other_kind")] += 1
            return None, time_us
        did, commit = event.get("did"), event.get("commit")
        if not isinstance(did, str) or not _DID.fullmatch(did):
            return self._reject(raw, "invalid_value", f"did is not a DID: {str(did)[:80]!r}", time_us), time_us
        if not isinstance(commit, dict):
            return self._reject(raw, "missing_field", "a commit event needs a commit object", time_us), time_us
        operation, collection, rkey = commit.get("operation"), commit.get("collection"), commit.get("rkey")
        if not isinstance(operation, str) or not isinstance(collection, str):
            return self._reject(raw, "missing_field", "commit.operation and commit.collection must be strings",
                                time_us), time_us
        if collection != POST_COLLECTION:
            self.skipped["other_collection"] += 1
            return None, time_us
        if operation in ("update", "delete"):
            self.skipped[operation] += 1
            return None, time_us
        if operation != "create":
            return self._reject(raw, "invalid_value", f"unknown commit.operation {operation[:40]!r}", time_us), time_us
        if not isinstance(rkey, str) or not _RKEY.fullmatch(rkey):
            return self._reject(raw, "invalid_value", f"commit.rkey is not a record key: {str(rkey)[:80]!r}",
                                time_us), time_us
        return self._post(raw, time_us, received, did, rkey, commit.get("record")), time_us

    def _post(self, raw: bytes, time_us: int, received: datetime, did: str, rkey: str,
              record: object) -> Post | Rejected | None:
        if not isinstance(record, dict):
            return self._reject(raw, "missing_field", "a post create needs commit.record (an object)", time_us)
        rtype = record.get("$type", POST_COLLECTION)
        if rtype != POST_COLLECTION:
            return self._reject(raw, "invalid_value", f"record.$type is {str(rtype)[:80]!r}, not {POST_COLLECTION}",
                                time_us)
        text = record.get("text")
        if not isinstance(text, str):
            return self._reject(raw, "missing_field" if text is None else "wrong_type",
                                "record.text must be a string", time_us)
        if not self._keyword_re.search(text.casefold()):
            self.skipped["unmatched"] += 1
            return None
        declared = record.get("langs")
        langs = [x for x in declared if isinstance(x, str)] if isinstance(declared, list) else []
        if self.langs and not any(_lang_matches(tag.lower(), want) for tag in langs for want in self.langs):
            self.skipped["lang_filtered"] += 1
            return None
        uri = f"at://{did}/{POST_COLLECTION}/{rkey}"
        post_id = f"{TYPE}:{uri}"
        if post_id in self.seen:
            self.skipped["duplicate"] += 1
            return None
        if len(text) > MAX_TEXT_CHARS:
            return self._reject(raw, "too_large", f"record.text is {len(text)} characters, the limit is "
                                f"{MAX_TEXT_CHARS}", time_us)
        url = f"https://bsky.app/profile/{did}/post/{rkey}"
        if max(len(post_id), len(url)) > MAX_FIELD_CHARS:
            return self._reject(raw, "too_large", f"did and rkey make an id longer than {MAX_FIELD_CHARS}", time_us)
        created_at = received
        try:
            claimed = parse_time(record.get("createdAt"), "record.createdAt")
        except MentionError:
            self.created_at_fallbacks += 1
        else:
            if claimed <= received:
                created_at = claimed
            else:
                self.created_at_fallbacks += 1
        lang = langs[0] if langs and len(langs[0]) <= MAX_FIELD_CHARS else None
        return Post(source=TYPE, id=post_id, text=text, created_at=created_at, author=did, url=url, lang=lang)

    def _reject(self, raw: bytes, reason: str, detail: str, time_us: int | None = None) -> Rejected:
        origin = f"{self.name}:{self._netloc}" + (f":time_us={time_us}" if time_us is not None else "")
        if len(raw) > MAX_MESSAGE_BYTES:
            detail += f" (message cut from {len(raw)} bytes)"
            raw = raw[:MAX_MESSAGE_BYTES]
        return Rejected(raw=raw, reason=reason, detail=detail, origin=origin)

    # -- checkpoint and health --------------------------------------------------------------------------------------

    def _maybe_save(self) -> None:
        if self._dirty and self.clock() - self._saved_at >= self.checkpoint_every_s:
            self.save()

    def save(self) -> None:
        """Persist the cursor and the recent ids (if anything changed)."""
        if self.store is None or not self._dirty:
            return
        self.store.save(self.name, {"cursor": self.cursor, "seen": self.seen.to_list()})
        self._dirty = False
        self._saved_at = self.clock()

    def _note_handshake_error(self, exc: BaseException) -> None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status is not None:
            headers = getattr(response, "headers", None)
            retry_after = headers.get("Retry-After") if headers is not None else None
            self._retry_after = retry_after_seconds(retry_after, self.wall())
            self._error(f"connecting to {self._netloc}: the server answered HTTP {status}")
        else:
            self._error(f"connecting to {self._netloc} failed: {type(exc).__name__}: {exc}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("%s: %s", self.name, message)

    def health(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "items": self.items_yielded,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_success": self.last_success,
            "cursor": None if self.cursor is None else str(self.cursor),
            "events": self.events,
            "rejected": self.rejected,
            "reconnects": self.reconnects,
            "skipped": dict(self.skipped),
            "created_at_fallbacks": self.created_at_fallbacks,
        }


def _lang_matches(tag: str, want: str) -> bool:
    return tag == want or tag.startswith(want + "-")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strings(opts: Mapping[str, Any], key: str, where: str, fix: str) -> list[str]:
    values = opts.get(key, [])
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise SourceConfigError(f"{where}.{key} must be a list of non-empty strings: {fix}")
    return [v.strip() for v in values]


def _number(opts: Mapping[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    value = float(opts.get(key, default))
    if value < minimum:
        raise SourceConfigError(f"{where}.{key} must be >= {minimum:g}, got {value:g}")
    return value


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> BlueskyJetstream:
    from .options import take

    number = (int, float)
    opts = take(table, where, {"keywords": list, "url": str, "langs": list, "dids": list, "rewind_s": number,
                               "checkpoint_every_s": number, "backoff_s": number, "max_backoff_s": number},
                required=("keywords",))
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name.strip():
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    keywords = _strings(opts, "keywords", where, 'e.g. keywords = ["acme", "acmecorp"]')
    if not keywords:
        raise SourceConfigError(f"{where}.keywords must hold at least one keyword: the firehose carries every post "
                                "on Bluesky, e.g. keywords = [\"acme\"]")
    url = opts.get("url", DEFAULT_URL)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise SourceConfigError(f"{where}.url must be a ws:// or wss:// Jetstream subscribe URL, e.g. {DEFAULT_URL!r}")
    langs = _strings(opts, "langs", where, 'BCP-47 language tags, e.g. langs = ["en", "de"]')
    dids = _strings(opts, "dids", where, 'e.g. dids = ["did:plc:abc..."]')
    bad = [d for d in dids if not _DID.fullmatch(d)]
    if bad:
        raise SourceConfigError(f"{where}.dids: {bad[0]!r} is not a DID (did:plc:... or did:web:...)")
    if len(dids) > MAX_DIDS:
        raise SourceConfigError(f"{where}.dids: Jetstream accepts at most {MAX_DIDS} DIDs, got {len(dids)}")
    backoff = _number(opts, "backoff_s", where, 1.0, 0.001)
    max_backoff = _number(opts, "max_backoff_s", where, 60.0, 0.001)
    if max_backoff < backoff:
        raise SourceConfigError(f"{where}.max_backoff_s must be >= backoff_s ({backoff:g})")
    return BlueskyJetstream(
        keywords, name=name, url=url, langs=langs, dids=dids, store=ctx.store(), stop=ctx.stop,
        rewind_s=_number(opts, "rewind_s", where, 5.0, 0.0),
        checkpoint_every_s=_number(opts, "checkpoint_every_s", where, 5.0, 0.0),
        backoff_s=backoff, max_backoff_s=max_backoff,
    )
