"""X (Twitter) posts from the X API v2 filtered stream.

The filtered stream is one long-lived HTTP response: ``GET {base_url}/2/tweets/search/stream``
with ``tweet.fields=created_at,author_id,lang,public_metrics,referenced_tweets,note_tweet``,
``expansions=author_id`` and ``user.fields=username,public_metrics``, authorised with
``Authorization: Bearer <token>`` (OAuth 2.0 App-only).  The body is newline-delimited
JSON, one object a line::

    {"data": {"id": "...", "text": "...", "created_at": "2026-11-23T14:02:11.000Z",
              "author_id": "...", "lang": "en", "referenced_tweets": [{"type": "retweeted", "id": "..."}]},
     "includes": {"users": [{"id": "...", "username": "...", "public_metrics": {"followers_count": 12}}]},
     "matching_rules": [{"id": "...", "tag": "crisiswatch:x"}]}

with a keep-alive blank line (``\\r\\n``) about every 20 seconds, and objects carrying
only ``errors`` (``operational-disconnect`` before a server-side close, for example).
Which posts the stream delivers is decided by *rules* kept on X's side and managed with
``GET``/``POST {base_url}/2/tweets/search/stream/rules``.

Rules.  At start (and before each reconnect until it has worked once) the source
syncs the configured ``rules`` with the stream's rule set: it lists the rules
(following ``meta.next_token`` / ``pagination_token``), deletes those tagged
``crisiswatch:<name>`` whose value is no longer configured (``{"delete": {"ids": [...]}}``)
and adds the configured ones that are missing (``{"add": [{"value": ..., "tag":
"crisiswatch:<name>"}]}``).  Rules with any other tag — another application's, or
another crisiswatch source's — are left alone.  A rule X refuses (invalid syntax)
is logged and shown in ``health()["last_error"]``; a ``DuplicateRule`` answer (the
same value already exists under another tag) is fine, the stream delivers its
matches anyway.  Rule requests go through :class:`~connectors.http.HttpClient`
(budget: 30 a minute, X allows 450 per 15 minutes).

Reading.  The stream is read line by line with :mod:`http.client` and a socket read
timeout of 30 s: keep-alives come every 20 s, so a longer silence means a dead
connection (X's guidance).  A helper thread shuts the socket down when ``ctx.stop`` is
set, so a blocked read ends at once and ``items()`` returns promptly.

Reconnecting, as X's "Handling disconnections" page says:

* a connection that was established and then ended (server close, stall, reset):
  reconnect at once;
* connection failures (TCP/IP errors): back off linearly, 250 ms more each attempt,
  up to 16 s;
* HTTP errors (5xx, and 4xx such as 401/403, which are retried slowly rather than
  ending the ingest): back off exponentially from 5 s, doubling, up to 320 s;
* HTTP 429 (rate limit, or ``TooManyConnections``): back off exponentially from 60 s,
  doubling, up to 960 s — and at least until ``x-rate-limit-reset`` (UNIX seconds) or
  ``Retry-After`` when the answer carries them;
* every connection attempt also spends from a budget of 50 per 15 minutes (the
  endpoint's documented limit) with a burst of 5.

Counters reset once a connection is established.

Gaps and duplicates.  The stream keeps no position: posts published while the
source is disconnected (or not running) are **not** delivered later, so a reconnect
or a restart can miss posts.  X's recovery feature, ``backfill_minutes`` (1..5,
Academic Research / Enterprise access only), replays up to five minutes of matches on
reconnect; set it when your access level has it and it is passed on every
connection.  Backfill re-delivers posts already seen, so the source keeps a persisted
window of seen ids (:class:`~connectors.checkpoint.SeenIds`, in the checkpoint under
the source's name, saved at most every 5 s or 100 posts, at every disconnect and on
close) and never yields the same post twice — across reconnects and restarts.

Config (``[[sources]]`` table, ``type = "x"``):

``rules``             list of rule strings (X's rule syntax, e.g. ``"acme -is:retweet lang:en"``),
                      required; synced at start as described above
``bearer_token_env``  name of the environment variable holding the app's Bearer token, required
``base_url``          API root, default ``"https://api.x.com"``
``backfill_minutes``  1..5, default unset (not sent); needs Academic Research / Enterprise access
``name``              instance name (rule tag ``crisiswatch:<name>``, checkpoint, health), default ``"x"``

A post from a stream object: ``id`` = ``"x:"`` + the post id; ``text`` = the post's
``text`` (or ``note_tweet.text`` for long posts), HTML entities (``&amp;``...) decoded,
cut at 10,000 characters; ``created_at`` = ``created_at``; ``author`` = ``"@"`` +
``username`` from ``includes.users``; ``url`` = ``https://x.com/<username>/status/<id>``
(``https://x.com/i/web/status/<id>`` when the author is not expanded); ``lang`` =
``lang`` (``"und"`` — undetermined — becomes none); ``reach`` = the author's
``public_metrics.followers_count``; ``is_repost`` = a ``referenced_tweets`` entry of
type ``retweeted``.  A line that is not JSON, or a post without ``id``, ``text`` or a
valid ``created_at``, is :class:`~connectors.source.Rejected` (``invalid_json``,
``not_an_object``, ``missing_field``, ``wrong_type``, ``bad_timestamp``, ``too_large``,
``truncated``).  An ``errors``-only object is not a post: it is logged and counted in
``health()``.

``health()``: ``polls`` = connection attempts, ``items`` = posts yielded, ``errors`` =
failed connections, stream error objects and refused rules, ``last_success`` = the last
time the stream answered (connection or any line, keep-alives included), ``cursor`` =
the newest post id seen.  The Bearer token never appears in logs, errors or health:
every message is scrubbed of it.

Documentation followed: X API v2 reference pages "GET /2/tweets/search/stream"
(query parameters, ``backfill_minutes``, 50 connections per 15 minutes), "GET
/2/tweets/search/stream/rules" and "POST /2/tweets/search/stream/rules" (``add`` /
``delete.ids``, ``data``, ``meta.summary``, ``errors``, 450 requests per 15 minutes), the
filtered-stream quickstart and "Handling disconnections" / "Recovery and redundancy"
guides on docs.x.com (keep-alive, backoff rules, backfill), the rate-limit headers
``x-rate-limit-limit/remaining/reset``, and tweepy's ``StreamingClient`` and issue
tweepy#1962 (the 429 ``ConnectionException`` / ``TooManyConnections`` body).
"""

from __future__ import annotations

import html
import http.client
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from .checkpoint import CheckpointStore, DeferredCheckpoints, SeenIds
from .http import (
    USER_AGENT,
    HttpClient,
    SourceUnavailable,
    TokenBucket,
    retry_after_seconds,
)
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

log = logging.getLogger(__name__)

TYPE = "x"
DEFAULT_BASE_URL = "https://api.x.com"
STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
TAG_PREFIX = "crisiswatch:"
STREAM_PARAMS = {
    "tweet.fields": "created_at,author_id,lang,public_metrics,referenced_tweets,note_tweet",
    "expansions": "author_id",
    "user.fields": "username,public_metrics",
}
RULES_REQUESTS_PER_MINUTE = 30.0
CONNECTS_PER_MINUTE = 50 / 15
MAX_RULE_CHARS = 2048
MAX_LINE_BYTES = 1 << 20
MAX_ERROR_BODY = 4096


class Backoff:
    """Reconnect delays per X's "Handling disconnections" guide; one counter per kind of failure."""

    network_step_s = 0.25
    network_max_s = 16.0
    http_start_s = 5.0
    http_max_s = 320.0
    rate_start_s = 60.0
    rate_max_s = 960.0

    def __init__(self) -> None:
        self.network = self.http = self.rate = 0

    def connected(self) -> None:
        self.network = self.http = self.rate = 0

    def network_error(self) -> float:
        self.network += 1
        return min(self.network_step_s * self.network, self.network_max_s)

    def http_error(self) -> float:
        self.http += 1
        return min(self.http_start_s * 2 ** (self.http - 1), self.http_max_s)

    def rate_limited(self, server_wait: float | None) -> float:
        self.rate += 1
        delay = min(self.rate_start_s * 2 ** (self.rate - 1), self.rate_max_s)
        if server_wait is not None:
            delay = max(delay, min(server_wait, self.rate_max_s))
        return delay


class _HttpFailure(Exception):
    def __init__(self, status: int, headers: Mapping[str, str], detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.headers = headers


class XStream:
    """The X API v2 filtered stream as a source of :class:`~connectors.post.Post`."""

    def __init__(
        self,
        rules: list[str],
        token: str,
        store: CheckpointStore | DeferredCheckpoints,
        name: str = TYPE,
        base_url: str = DEFAULT_BASE_URL,
        backfill_minutes: int | None = None,
        stop: threading.Event | None = None,
        http: HttpClient | None = None,
        read_timeout_s: float = 30.0,
        connects_per_minute: float = CONNECTS_PER_MINUTE,
        sleep: Callable[[float], object] | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        checkpoint_every_s: float = 5.0,
        checkpoint_every_items: int = 100,
    ) -> None:
        self.name = name
        self.rules = list(dict.fromkeys(rules))
        self.tag = f"{TAG_PREFIX}{name}"
        self._token = token
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.backfill_minutes = backfill_minutes
        self.stop = stop or threading.Event()
        self.http = http or HttpClient(f"x:{name}", requests_per_minute=RULES_REQUESTS_PER_MINUTE, stop=self.stop)
        self.read_timeout_s = read_timeout_s
        self.connects = TokenBucket(connects_per_minute, burst=5, clock=clock)
        self.sleep: Callable[[float], object] = sleep or self.stop.wait
        self.wall = wall
        self.clock = clock
        self.checkpoint_every_s = checkpoint_every_s
        self.checkpoint_every_items = checkpoint_every_items
        self.backoff = Backoff()
        self.rules_synced = False
        self.origin = f"x:{name}:stream"

        state = store.load(name)
        self.seen = SeenIds(state.get("seen", ()))
        self.cursor: str | None = state.get("cursor")
        self._unsaved = 0
        self._saved_at = clock()

        self.polls = 0
        self.items_out = 0
        self.errors = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.last_success: str | None = None
        self.connected = False
        self.next_delay = 0.0
        """The wait before the next connection, as decided by the last one (for tests and health)."""

    # -- the source protocol ---------------------------------------------------------

    def items(self) -> Iterator[Item]:
        try:
            while not self.stop.is_set():
                yield from self.connect_once()
                if self.stop.is_set():
                    break
                if self.next_delay > 0:
                    log.info("%s: reconnecting in %.2f s", self.name, self.next_delay)
                    self.sleep(self.next_delay)
        finally:
            self._save()

    def poll_once(self) -> list[Item]:
        """One connection, read until it ends (for tests and one-shot use)."""
        return list(self.connect_once())

    def health(self) -> dict[str, Any]:
        return {"polls": self.polls, "items": self.items_out, "errors": self.errors,
                "last_error": self.last_error, "last_success": self.last_success, "cursor": self.cursor,
                "rejected": self.rejected, "connected": self.connected}

    # -- rules -------------------------------------------------------------------------

    def sync_rules(self) -> None:
        """Make the rules tagged ``crisiswatch:<name>`` equal the configured ones."""
        existing = self._list_rules()
        ours = {r["value"]: r["id"] for r in existing if r.get("tag") == self.tag}
        stale = [rule_id for value, rule_id in ours.items() if value not in self.rules]
        missing = [value for value in self.rules if value not in ours]
        if stale:
            answer = self._post_rules({"delete": {"ids": stale}})
            summary = (answer.get("meta") or {}).get("summary") or {}
            log.info("%s: deleted %s stale rule(s)", self.name, summary.get("deleted", len(stale)))
            self._rule_errors(answer)
        if missing:
            answer = self._post_rules({"add": [{"value": value, "tag": self.tag} for value in missing]})
            summary = (answer.get("meta") or {}).get("summary") or {}
            log.info("%s: added %s rule(s), %s not created", self.name, summary.get("created", "?"),
                     summary.get("not_created", 0))
            self._rule_errors(answer)
        self.rules_synced = True

    def _list_rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        while True:
            answer = self.http.get(self.base_url + RULES_PATH, params=params or None, headers=self._auth()).json()
            for rule in answer.get("data") or ():
                if isinstance(rule, dict) and isinstance(rule.get("id"), str) and isinstance(rule.get("value"), str):
                    rules.append(rule)
            token = (answer.get("meta") or {}).get("next_token")
            if not token:
                return rules
            params = {"pagination_token": token}

    def _post_rules(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {**self._auth(), "Content-Type": "application/json"}
        answer = self.http.request("POST", self.base_url + RULES_PATH, body=orjson.dumps(body), headers=headers)
        result = answer.json()
        return result if isinstance(result, dict) else {}

    def _rule_errors(self, answer: Mapping[str, Any]) -> None:
        for err in answer.get("errors") or ():
            if not isinstance(err, dict):
                continue
            title = str(err.get("title", "error"))
            if title == "DuplicateRule":
                log.info("%s: rule %r already exists (id %s)", self.name, err.get("value"), err.get("id"))
                continue
            details = "; ".join(str(d) for d in err.get("details") or ()) or str(err.get("detail", ""))
            self._error(f"rule {err.get('value')!r} refused: {title}: {details}")

    # -- the stream --------------------------------------------------------------------

    def connect_once(self) -> Iterator[Item]:
        """Open one stream connection and yield what it delivers until it ends.

        Sets :attr:`next_delay`, the backoff before the next attempt.
        """
        if not self.rules_synced:
            try:
                self.sync_rules()
            except (SourceUnavailable, orjson.JSONDecodeError, AttributeError, TypeError) as exc:
                if not self.stop.is_set():
                    self._error(f"rule sync failed (retried before the next connection): {exc}")
        wait = self.connects.reserve()
        if wait > 0:
            self.sleep(wait)
        if self.stop.is_set():
            self.next_delay = 0.0
            return
        self.polls += 1
        conn: http.client.HTTPConnection | None = None
        resp: http.client.HTTPResponse | None = None
        done = threading.Event()
        try:
            try:
                conn, resp, sock = self._open()
            except _HttpFailure as exc:
                if exc.status == 429:
                    self.next_delay = self.backoff.rate_limited(self._server_wait(exc.headers))
                else:
                    self.next_delay = self.backoff.http_error()
                self._error(f"stream: {exc}")
                return
            except (OSError, http.client.HTTPException) as exc:
                self.next_delay = self.backoff.network_error()
                self._error(f"stream connection failed: {type(exc).__name__}: {exc}")
                return
            self.backoff.connected()
            self.connected = True
            self._alive()
            log.info("%s: connected to the filtered stream", self.name)
            threading.Thread(target=self._watch, args=(sock, done), daemon=True,
                             name=f"{self.name}-stop-watch").start()
            yield from self._read(resp)
            self.next_delay = 0.0
        finally:
            self.connected = False
            done.set()
            if resp is not None:
                resp.close()
            if conn is not None:
                conn.close()
            self._save()

    def _open(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket | None]:
        parts = urllib.parse.urlsplit(self.base_url)
        params = dict(STREAM_PARAMS)
        if self.backfill_minutes:
            params["backfill_minutes"] = str(self.backfill_minutes)
        path = f"{parts.path.rstrip('/')}{STREAM_PATH}?{urllib.parse.urlencode(params)}"
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.read_timeout_s)
        try:
            conn.request("GET", path, headers={**self._auth(), "User-Agent": USER_AGENT})
            sock = conn.sock  # kept: getresponse() drops it from conn when the answer will close
            resp = conn.getresponse()
            if resp.status != 200:
                headers = dict(resp.headers.items())
                try:
                    body = resp.read(MAX_ERROR_BODY)
                except (OSError, http.client.HTTPException):
                    body = b""
                raise _HttpFailure(resp.status, headers, _error_detail(body) or resp.reason)
        except BaseException:
            conn.close()
            raise
        return conn, resp, sock

    def _read(self, resp: http.client.HTTPResponse) -> Iterator[Item]:
        while not self.stop.is_set():
            try:
                line = resp.readline(MAX_LINE_BYTES)
            except TimeoutError:
                if not self.stop.is_set():
                    self._warn(f"no data and no keep-alive for {self.read_timeout_s:g} s: the connection is dead")
                return
            except (OSError, http.client.HTTPException) as exc:
                if not self.stop.is_set():
                    self._warn(f"stream dropped: {type(exc).__name__}: {exc}")
                return
            if not line:
                if not self.stop.is_set():
                    self._warn("stream closed by the server")
                return
            self._alive()
            if not line.endswith(b"\n"):
                if len(line) >= MAX_LINE_BYTES:
                    yield from self._oversized(resp, line)
                    continue
                yield self._reject(line, "truncated", "the connection ended in the middle of this line", self.origin)
                return
            line = line.strip()
            if line:
                yield from self._handle(line)

    def _oversized(self, resp: http.client.HTTPResponse, head: bytes) -> Iterator[Item]:
        size = len(head)
        try:
            while True:
                part = resp.readline(MAX_LINE_BYTES)
                size += len(part)
                if not part or part.endswith(b"\n"):
                    break
        except (OSError, http.client.HTTPException):
            pass
        yield self._reject(self._scrub_bytes(head[:MAX_ERROR_BODY]), "too_large",
                           f"a stream line of {size} bytes (limit {MAX_LINE_BYTES})")

    def _handle(self, line: bytes) -> Iterator[Item]:
        line = self._scrub_bytes(line)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield self._reject(line, "invalid_json", f"not JSON: {exc}")
            return
        if not isinstance(obj, dict):
            yield self._reject(line, "not_an_object", f"a stream line must be an object, got {type(obj).__name__}")
            return
        errors = obj.get("errors")
        if not isinstance(errors, list):
            errors = [errors] if errors else []
        if obj.get("data") is None:
            if errors:
                self._error("stream error: " + "; ".join(_describe(e) for e in errors if isinstance(e, dict)))
            else:
                yield self._reject(line, "missing_field", "a stream object with neither data nor errors")
            return
        if errors:
            log.debug("%s: partial errors with a post: %s", self.name,
                      self._scrub("; ".join(_describe(e) for e in errors if isinstance(e, dict))))
        try:
            post = self._post(obj)
        except MentionError as exc:
            yield self._reject(line, exc.reason, str(exc))
            return
        if post.id in self.seen:
            return
        self.seen.add(post.id)
        raw_id = post.id[len(TYPE) + 1:]
        if self.cursor is None or _newer(raw_id, self.cursor):
            self.cursor = raw_id
        self.items_out += 1
        self._unsaved += 1
        yield post
        if (self._unsaved >= self.checkpoint_every_items
                or self.clock() - self._saved_at >= self.checkpoint_every_s):
            self._save()

    def _post(self, obj: Mapping[str, Any]) -> Post:
        data = obj.get("data")
        if not isinstance(data, dict):
            raise MentionError("wrong_type", "data must be an object", "data")
        tweet_id = data.get("id")
        if tweet_id is None or tweet_id == "":
            raise MentionError("missing_field", "data.id is required", "id")
        if not isinstance(tweet_id, str):
            raise MentionError("wrong_type", f"data.id must be a string, got {type(tweet_id).__name__}", "id")
        if len(tweet_id) > MAX_FIELD_CHARS - 2:
            raise MentionError("too_large", "data.id is too long", "id")
        text = data.get("text")
        note = data.get("note_tweet")
        if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"].strip():
            text = note["text"]
        if text is None:
            raise MentionError("missing_field", f"post {tweet_id}: data.text is required", "text")
        if not isinstance(text, str):
            raise MentionError("wrong_type", f"post {tweet_id}: data.text must be a string", "text")
        text = html.unescape(text)[:MAX_TEXT_CHARS]
        if not text.strip():
            raise MentionError("missing_field", f"post {tweet_id}: data.text is empty", "text")
        if "created_at" not in data:
            raise MentionError("missing_field", f"post {tweet_id}: data.created_at is required", "created_at")
        created_at = parse_time(data["created_at"], "created_at")

        user = _user(obj, data.get("author_id"))
        username = user.get("username") if user else None
        if not isinstance(username, str) or not username or len(username) > 100:
            username = None
        metrics = user.get("public_metrics") if user else None
        followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
        reach = followers if type(followers) is int and followers >= 0 else None
        lang = data.get("lang")
        if not isinstance(lang, str) or not lang or lang == "und" or len(lang) > 35:
            lang = None
        refs = data.get("referenced_tweets")
        is_repost = isinstance(refs, list) and any(isinstance(r, dict) and r.get("type") == "retweeted" for r in refs)
        quoted_id = urllib.parse.quote(tweet_id, safe="")
        url = (f"https://x.com/{username}/status/{quoted_id}" if username
               else f"https://x.com/i/web/status/{quoted_id}")
        return Post(source=TYPE, id=f"{TYPE}:{tweet_id}", text=text, created_at=created_at,
                    author=f"@{username}" if username else None, url=url, lang=lang, reach=reach,
                    is_repost=is_repost)

    def _watch(self, sock: socket.socket | None, done: threading.Event) -> None:
        """Unblock a read in progress as soon as the process stops."""
        while not done.is_set():
            if self.stop.wait(0.2):
                if sock is not None and not done.is_set():
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    # -- helpers -----------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _server_wait(self, headers: Mapping[str, str]) -> float | None:
        lowered = {k.lower(): v for k, v in headers.items()}
        now = self.wall()
        waits = []
        reset = lowered.get("x-rate-limit-reset", "").strip()
        if reset.isdigit():
            waits.append(max(0.0, float(reset) - now))
        asked = retry_after_seconds(lowered.get("retry-after"), now)
        if asked is not None:
            waits.append(asked)
        return max(waits) if waits else None

    def _scrub(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "[redacted]")
        return _BEARER.sub("Bearer [redacted]", text)

    def _scrub_bytes(self, raw: bytes) -> bytes:
        token = self._token.encode()
        return raw.replace(token, b"[redacted]") if token and token in raw else raw

    def _reject(self, raw: bytes, reason: str, detail: str) -> Rejected:
        self.rejected += 1
        log.warning("%s: rejected a stream line (%s): %s", self.name, reason, self._scrub(detail)[:300])
        return Rejected(raw, reason, self._scrub(detail), self.origin)

    def _error(self, message: str) -> None:
        message = self._scrub(message)[:1000]  # scrubbed before it is cut, so no piece of the token survives
        self.errors += 1
        self.last_error = message
        log.warning("%s: %s", self.name, message)

    def _warn(self, message: str) -> None:
        log.warning("%s: %s", self.name, self._scrub(message)[:1000])

    def _alive(self) -> None:
        self.last_success = format_time(datetime.fromtimestamp(self.wall(), timezone.utc))

    def _save(self) -> None:
        self.store.save(self.name, {"seen": self.seen.to_list(), "cursor": self.cursor})
        self._unsaved = 0
        self._saved_at = self.clock()


_BEARER = re.compile(r"Bearer\s+[^\s\"',;]+", re.IGNORECASE)


def _user(obj: Mapping[str, Any], author_id: object) -> dict[str, Any] | None:
    includes = obj.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    if not isinstance(users, list):
        return None
    for user in users:
        if isinstance(user, dict) and user.get("id") == author_id and author_id is not None:
            return user
    return None


def _newer(candidate: str, current: str) -> bool:
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate > current


def _describe(err: Mapping[str, Any]) -> str:
    parts = [str(err[k]) for k in ("title", "disconnect_type", "connection_issue", "detail") if err.get(k)]
    return ": ".join(parts) or "unknown error"


def _error_detail(body: bytes) -> str:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(obj, dict):
        errors = obj.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and "title" not in obj:
            return _describe(errors[0])
        return _describe(obj)
    return str(obj)


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> XStream:
    opts = take(table, where, {"rules": list, "bearer_token_env": str, "base_url": str, "backfill_minutes": int},
                required=("rules", "bearer_token_env"))
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name.strip():
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    rules = opts["rules"]
    if not rules:
        raise SourceConfigError(f"{where}.rules must list at least one rule, e.g. rules = [\"acme -is:retweet\"]")
    for i, rule in enumerate(rules):
        if not isinstance(rule, str) or not rule.strip():
            raise SourceConfigError(f"{where}.rules[{i}] must be a non-empty string (a filtered-stream rule)")
        if len(rule) > MAX_RULE_CHARS:
            raise SourceConfigError(f"{where}.rules[{i}] is {len(rule)} characters; X allows at most "
                                    f"{MAX_RULE_CHARS} (1,024 below Enterprise): split it into several rules")
    base_url = opts.get("base_url", DEFAULT_BASE_URL)
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceConfigError(f"{where}.base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, "
                                f"got {base_url!r}")
    backfill = opts.get("backfill_minutes")
    if backfill is not None and not 1 <= backfill <= 5:
        raise SourceConfigError(f"{where}.backfill_minutes must be a whole number from 1 to 5 (or left out), "
                                f"got {backfill}")
    token = ctx.secret(table, "bearer_token_env", where)
    assert token is not None
    store = ctx.store()
    http_client = HttpClient(f"x:{name}", requests_per_minute=RULES_REQUESTS_PER_MINUTE, stop=ctx.stop)
    return XStream([r.strip() for r in rules], token, store, name=name, base_url=base_url,
                   backfill_minutes=backfill, stop=ctx.stop, http=http_client)
