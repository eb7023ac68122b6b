"""Inbound webhook: an HTTP endpoint that anything else can POST mentions to.

For vendor firehoses, internal tools and Zapier-style automations that push
rather than being polled.  The source runs a small stdlib HTTP server
(:class:`http.server.ThreadingHTTPServer`) and yields what it receives.

Request::

    POST /mentions HTTP/1.1
    Authorization: Bearer <token>
    Content-Type: application/json

    {"id": "zd:1", "source": "zendesk", "brand": "acme", "text": "...",
     "created_at": "2026-11-23T14:02:11Z", "author": "x", "reach": 10}

The body is one object or an array of objects in the mention wire format
(:mod:`connectors.mention`).  An object *with* ``brand`` is a
:class:`~connectors.mention.Mention` and is published as it is; an object
*without* ``brand`` (absent or ``null``) is a :class:`~connectors.post.Post`
that the ingest matches to brands.  Both are validated by
:func:`connectors.mention.from_dict` — a brand-less object is checked with a
placeholder brand, which cannot itself fail, so the rules (required fields,
types, 10,000-character text, 2,048-character fields, timestamps with a
timezone in 2000..2100) are exactly the wire format's and cannot drift.  The
sender's ``id`` and ``source`` are kept.  An object that is not valid becomes
a :class:`~connectors.source.Rejected` (reason = the ``MentionError`` code,
origin ``webhook:<remote address>``) that goes to the dead-letter topic; it
is reported in the response, never dropped.

Responses (JSON bodies):

* ``202 {"accepted": n, "duplicates": d, "rejected": [{"index": i, "reason": ..., "detail": ...}]}``
  — ``accepted`` counts new valid objects, ``duplicates`` repeats of objects
  already received (a retried delivery: nothing is published twice),
  ``rejected`` the invalid ones, by their index in the request.
* ``400`` the body is not JSON, or not an object / array of objects.
* ``401`` missing or wrong bearer token (``WWW-Authenticate: Bearer``);
  nothing is accepted.
* ``404`` another path; ``405`` another method (with ``Allow``).
* ``411`` a chunked body (send it with a ``Content-Length``).
* ``413`` body over ``max_body_bytes`` or more than ``max_items`` objects.
* ``415`` ``Content-Type`` other than ``application/json`` (or a
  ``Content-Encoding`` such as gzip).
* ``503`` with ``Retry-After: 1`` when the queue cannot take the whole
  request (backpressure): a request is accepted all or nothing.
* ``GET <path>/health`` → ``200`` with :meth:`WebhookSource.health` (no
  authentication, no secrets), for load-balancer probes.

Delivery semantics.  ``202`` means "queued in memory": the queue lives in the
ingest process, so items accepted but not yet handed to the ingest are lost if
the process dies.  Repeated deliveries are recognised by ``(source, id,
brand)`` in a window of the last ``dedup_ids`` keys; when the ingest has a
checkpoint directory the window of keys *already yielded* is saved under the
source's name, so a sender retrying after our restart does not publish twice
either.  Rejected objects are not de-duplicated (they have no trustworthy id).

Security.  The token is compared in constant time (:func:`hmac.compare_digest`)
and never logged or shown in health.  The server speaks plain HTTP: it listens
on loopback by default; to expose it, set ``host`` and put it behind a
TLS-terminating reverse proxy (the remote address in ``origin`` is then the
proxy's).

Config keys (``[[sources]]`` with ``type = "webhook"``):

* ``token_env`` (required) — name of the environment variable holding the
  bearer token (at least 16 characters; e.g. ``secrets.token_urlsafe(32)``).
* ``name`` — instance name for health and checkpoints, default ``"webhook"``.
* ``host`` — address to listen on, default ``"127.0.0.1"`` (loopback only).
* ``port`` — default ``8787``; ``0`` picks a free port (see
  :attr:`WebhookSource.port`).
* ``path`` — default ``"/mentions"``; health is at ``<path>/health``.
* ``max_items`` — objects per request, default ``1000`` (at most ``queue_size``).
* ``max_body_bytes`` — default ``5242880`` (5 MiB).
* ``queue_size`` — items waiting for the ingest, default ``10000``.
* ``dedup_ids`` — how many recent keys are remembered for de-duplication,
  default ``10000``.
* ``max_connections`` — connections served at once, default ``32``; one more
  is answered ``503`` (``Retry-After: 1``) and closed at once.
* ``request_timeout_s`` — total time a sender has for one request (waiting
  on a kept-alive connection, request line, headers and body), default
  ``30``; then ``408`` and the connection is closed.  A deadline for the
  whole request, not for each read: a client that trickles a byte at a time
  cannot hold a thread.

The server is :mod:`connectors.http_server`'s: besides those two limits it
refuses an ambiguous body length before reading the body (``400`` for two
``Content-Length`` headers, one with ``Transfer-Encoding``, or one that is
not a number) and logs request lines with control characters escaped.

``reach`` is whatever the sender puts in the wire field (followers, score...).

Followed: the Python ``http.server`` / ``socketserver`` documentation
(ThreadingHTTPServer, BaseHTTPRequestHandler, HTTP/1.1 keep-alive rules), RFC
9110 (HTTP semantics: 405 + ``Allow``, 411, 413, 415, 503 + ``Retry-After``),
RFC 6750 §3 (``Authorization: Bearer``, ``WWW-Authenticate: Bearer`` with
``error="invalid_token"``) and the ``hmac.compare_digest`` documentation.
"""

from __future__ import annotations

import hmac
import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from .checkpoint import CheckpointStore, DeferredCheckpoints, SeenIds
from .http import is_loopback
from .http_server import (DEFAULT_MAX_CONNECTIONS, HardenedHandler, HardenedServer, HttpLimits, Refused,
                          content_length)
from .mention import MAX_MESSAGE_BYTES, Mention, MentionError, from_dict
from .options import take
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext

log = logging.getLogger(__name__)

TYPE = "webhook"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_PATH = "/mentions"
DEFAULT_MAX_ITEMS = 1000
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_DEDUP_IDS = 10_000
DEFAULT_REQUEST_TIMEOUT_S = 30.0
MIN_TOKEN_CHARS = 16

_PLACEHOLDER_BRAND = "-"
_KEY_SEP = "\x1f"
_DRAIN_SLACK = 16 * 1024 * 1024
"""How far past ``max_body_bytes`` a refused body is still read, so the sender sees the 413."""


def parse_object(obj: object) -> Mention | Post:
    """One wire-format object → a Mention (with ``brand``) or a Post (without); raises MentionError."""
    if isinstance(obj, dict) and obj.get("brand") is None:
        m = from_dict({**obj, "brand": _PLACEHOLDER_BRAND})
        return Post(m.source, m.id, m.text, m.created_at, m.author, m.url, m.lang, m.reach, m.is_repost)
    return from_dict(obj)


def dedup_key(item: Mention | Post) -> str:
    """``(source, id, brand)``: one post sent for two brands is two mentions, not a repeat."""
    brand = item.brand if isinstance(item, Mention) else ""
    return _KEY_SEP.join((item.source, item.id, brand))


def _raw(obj: object) -> bytes:
    try:
        raw = orjson.dumps(obj)
    except TypeError:  # pragma: no cover - anything orjson parsed it can write
        raw = repr(obj).encode("utf-8", "replace")
    return raw[:MAX_MESSAGE_BYTES]


_Reply = Refused
"""Ends a request early with a status and a JSON error body."""


class _Server(HardenedServer):
    def __init__(self, address: tuple[str, int], source: WebhookSource) -> None:
        self.source = source
        limits = HttpLimits(source.max_connections, source.request_timeout_s, source.max_body_bytes)
        super().__init__(address, _Handler, limits, source.name)


class _Handler(HardenedHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "crisiswatch-webhook"
    http_log = log
    log_name = "webhook"
    drain_slack = _DRAIN_SLACK

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 for methods without a do_X; every method is known here and gets 405
        if name.startswith("do_"):
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def _route(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: refuse a request we would refuse anyway before its body is sent."""
        src = self.server.source
        self.body_read = False
        if self.command == "POST" and self._route() == src.path:
            try:
                src._precheck(self)
            except _Reply as reply:
                src._count_request()
                self.close_connection = True  # the client may or may not send the body now
                self._fail(reply)
                return False
        return super().handle_expect_100()

    def _dispatch(self, method: str) -> None:
        src = self.server.source
        self.body_read = False
        path = self._route()
        try:
            if path == src.health_path:
                if method != "GET":
                    raise _Reply(405, "method_not_allowed", f"{method} is not allowed here", {"Allow": "GET"})
                self._send(200, src.health())
            elif path == src.path:
                if method != "POST":
                    raise _Reply(405, "method_not_allowed", f"{method} is not allowed here", {"Allow": "POST"})
                src._count_request()
                self._send(202, src._receive(self))
            else:
                raise _Reply(404, "not_found", f"no endpoint at {path[:200]}")
        except _Reply as reply:
            self._fail(reply)

    def refuse(self, refused: Refused) -> None:
        """A request refused from its headers by the shared server (framing, size)."""
        if self.command == "POST" and self._route() == self.server.source.path:
            self.server.source._count_request()
        self._fail(refused)

    def _fail(self, reply: _Reply) -> None:
        src = self.server.source
        src._count_error(reply, self.client_address[0])
        # a body left unread would be parsed as the next request, and closing on unread
        # data resets the connection before the client reads our answer: drain it if sane
        self.discard_body()
        self._send(reply.status, {"error": reply.error, "detail": reply.detail}, reply.headers)

    def _send(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class WebhookSource:
    """Runs the HTTP server and hands what it accepts to :meth:`items`.

    The server starts on :meth:`start` (called by :meth:`items`); :attr:`port`
    is the bound port (useful with ``port=0``) and :attr:`ready` is set once it
    listens.  :meth:`items` returns when ``stop`` is set, after shutting the
    server down and yielding what was already accepted.
    """

    drains_on_stop = True
    """Items already answered 202 are handed on after the stop (see connectors.source.Source)."""

    def __init__(
        self,
        token: str,
        *,
        name: str = TYPE,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        path: str = DEFAULT_PATH,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        dedup_ids: int = DEFAULT_DEDUP_IDS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        stop: threading.Event | None = None,
        store: CheckpointStore | DeferredCheckpoints | None = None,
        poll_s: float = 0.1,
    ) -> None:
        if not token:
            raise ValueError("a webhook needs a token")
        self.name = name
        self.host = host
        self.port = port
        self.path = path.rstrip("/") or "/"
        self.health_path = self.path.rstrip("/") + "/health"
        self.max_items = max_items
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self.stop = stop or threading.Event()
        self.store = store
        self.poll_s = poll_s
        self.ready = threading.Event()
        self._token = token.encode("utf-8")
        self._queue: queue.Queue[tuple[str | None, Item]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        saved = store.load(name).get("seen", []) if store is not None else []
        saved = [s for s in saved if isinstance(s, str)] if isinstance(saved, list) else []
        self._seen = SeenIds(saved, capacity=dedup_ids)
        """Keys accepted into the queue (checked at request time)."""
        self._yielded = SeenIds(saved, capacity=dedup_ids)
        """Keys handed to the ingest: what is saved, so a restart forgets nothing it published."""
        self._unsaved = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._stats: dict[str, Any] = {
            "polls": 0, "items": 0, "errors": 0, "last_error": None, "last_success": None,
            "accepted": 0, "duplicates": 0, "rejected": 0, "busy": 0, "unauthorized": 0,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve (idempotent)."""
        with self._lock:
            if self._server is not None:
                return
            try:
                server = _Server((self.host, self.port), self)
            except OSError as exc:
                raise SourceConfigError(f"{self.name}: cannot listen on {self.host}:{self.port} ({exc}); "
                                        "change port or host") from None
            self._server = server
            self._closing = False
            self.port = server.server_address[1]
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": self.poll_s},
                                            name=f"{self.name}-http", daemon=True)
            self._thread.start()
        if not is_loopback(self.host):
            log.warning("%s listens on %s:%d in plain HTTP: put it behind a TLS proxy", self.name, self.host,
                        self.port)
        log.info("%s listening on %s:%d%s", self.name, self.host, self.port, self.path)
        self.ready.set()

    def close(self) -> None:
        """Stop accepting (503 from now on), shut the server down and free the port."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            self._closing = True
        self.ready.clear()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def items(self) -> Iterator[Item]:
        self.start()
        try:
            while not self.stop.is_set():
                try:
                    key, item = self._queue.get(timeout=self.poll_s)
                except queue.Empty:
                    self._save()
                    continue
                yield item
                self._yielded_one(key)
            self.close()
            while True:  # what was accepted before the shutdown: the senders were told 202
                try:
                    key, item = self._queue.get_nowait()
                except queue.Empty:
                    break
                yield item
                self._yielded_one(key)
        finally:
            self.close()
            self._save()

    def _yielded_one(self, key: str | None) -> None:
        with self._lock:
            self._stats["items"] += 1
        if key is not None:
            self._yielded.add(key)
            self._unsaved += 1
            if self._unsaved >= 1000:
                self._save()

    def _save(self) -> None:
        if self.store is None or not self._unsaved:
            return
        self.store.save(self.name, {"seen": self._yielded.to_list()})
        self._unsaved = 0

    # -- requests ----------------------------------------------------------------------------

    def _count_request(self) -> None:
        with self._lock:
            self._stats["polls"] += 1

    def _precheck(self, req: _Handler) -> int:
        """What can be refused from the headers alone; returns the body's length."""
        if not self._authorized(req.headers.get("Authorization")):
            challenge = 'Bearer realm="crisiswatch"'
            if req.headers.get("Authorization"):
                challenge += ', error="invalid_token"'
            raise _Reply(401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": challenge})
        length = content_length(req.headers)
        if length > self.max_body_bytes:
            raise _Reply(413, "too_large", f"body is {length} bytes, the limit is {self.max_body_bytes}")
        content_type = (req.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        encoding = (req.headers.get("Content-Encoding") or "identity").strip().lower()
        if content_type != "application/json" or encoding != "identity":
            what = f"Content-Encoding {encoding}" if content_type == "application/json" else \
                f"Content-Type {content_type or '(none)'}"
            raise _Reply(415, "unsupported_media_type", f"{what} is not supported: send application/json")
        return length

    def _receive(self, req: _Handler) -> dict[str, Any]:
        """Handle one POST to :attr:`path`: check, parse, validate, enqueue all or nothing."""
        self._precheck(req)
        body = req.read_body()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Reply(400, "invalid_json", f"body is not valid UTF-8 JSON: {exc}") from None
        if isinstance(doc, dict):
            objects: list[Any] = [doc]
        elif isinstance(doc, list):
            objects = doc
        else:
            raise _Reply(400, "not_an_object", f"body must be an object or an array of objects, got "
                                               f"{type(doc).__name__}")
        if len(objects) > self.max_items:
            raise _Reply(413, "too_many_items", f"{len(objects)} objects, the limit is {self.max_items} a request")
        return self._enqueue(objects, f"{TYPE}:{req.client_address[0]}")

    def _authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").strip().partition(" ")
        given = token.strip().encode("utf-8", "replace")
        ok = hmac.compare_digest(given, self._token)  # always compared: no early exit on a bad scheme
        return ok and scheme.lower() == "bearer"

    def _enqueue(self, objects: list[Any], origin: str) -> dict[str, Any]:
        parsed: list[tuple[str | None, Item]] = []
        rejected: list[dict[str, Any]] = []
        for index, obj in enumerate(objects):
            try:
                item = parse_object(obj)
            except MentionError as exc:
                parsed.append((None, Rejected(_raw(obj), exc.reason, str(exc), origin)))
                rejected.append({"index": index, "reason": exc.reason, "detail": str(exc)})
            else:
                parsed.append((dedup_key(item), item))
        with self._lock:
            fresh: list[tuple[str | None, Item]] = []
            keys: set[str] = set()
            for key, item in parsed:
                if key is not None and (key in self._seen or key in keys):
                    continue
                if key is not None:
                    keys.add(key)
                fresh.append((key, item))
            if self._closing or self._queue.maxsize - self._queue.qsize() < len(fresh):
                raise _Reply(503, "busy", "the ingest is behind (or shutting down): retry later",
                             {"Retry-After": "1"})
            for entry in fresh:  # cannot block: only request threads put, under this lock
                self._queue.put_nowait(entry)
            for key in keys:
                self._seen.add(key)
            accepted = len(keys)
            duplicates = len(parsed) - len(rejected) - accepted
            self._stats["accepted"] += accepted
            self._stats["duplicates"] += duplicates
            self._stats["rejected"] += len(rejected)
            self._stats["last_success"] = _now()
        return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}

    def _count_error(self, reply: _Reply, remote: str) -> None:
        with self._lock:
            self._stats["errors"] += 1
            if reply.status == 401:
                self._stats["unauthorized"] += 1
            elif reply.status == 503:
                self._stats["busy"] += 1
            self._stats["last_error"] = f"{reply.status} to {remote}: {reply.detail}"[:500]

    def health(self) -> dict[str, Any]:
        """Counters for ``/health`` and the service: ``polls`` counts POST requests, ``items`` items yielded."""
        with self._lock:
            out = dict(self._stats)
        out["cursor"] = None
        out["queued"] = self._queue.qsize()
        out["listening"] = self.ready.is_set()
        server = self._server
        out["turned_away"] = server.refused if server is not None else 0  # connections over max_connections
        out["port"] = self.port
        return out


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(table: Mapping[str, Any], where: str, ctx: SourceContext) -> WebhookSource:
    opts = take(table, where, {"token_env": str, "host": str, "port": int, "path": str, "max_items": int,
                                "max_body_bytes": int, "queue_size": int, "dedup_ids": int, "max_connections": int,
                                "request_timeout_s": (int, float)},
                required=("token_env",))
    token = ctx.secret(table, "token_env", where)
    assert token is not None
    if len(token) < MIN_TOKEN_CHARS:
        raise SourceConfigError(f"{where}.token_env: the token in {opts['token_env']} is shorter than "
                                f"{MIN_TOKEN_CHARS} characters; use a random one, e.g. "
                                "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    name = table.get("name", TYPE)
    if not isinstance(name, str) or not name.strip():
        raise SourceConfigError(f"{where}.name must be a non-empty string")
    port = opts.get("port", DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise SourceConfigError(f"{where}.port must be 0..65535 (0 = any free port), got {port}")
    path = opts.get("path", DEFAULT_PATH)
    if not path.startswith("/") or any(c in path for c in "?# "):
        raise SourceConfigError(f"{where}.path must be a URL path starting with '/', e.g. \"/mentions\"; "
                                f"got {path!r}")
    host = opts.get("host", DEFAULT_HOST)
    if not host.strip():
        raise SourceConfigError(f'{where}.host must be an address to listen on, e.g. "127.0.0.1" or "0.0.0.0"')
    sizes = {"max_items": DEFAULT_MAX_ITEMS, "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
             "queue_size": DEFAULT_QUEUE_SIZE, "dedup_ids": DEFAULT_DEDUP_IDS}
    for key, default in sizes.items():
        sizes[key] = opts.get(key, default)
        if sizes[key] < 1:
            raise SourceConfigError(f"{where}.{key} must be >= 1, got {sizes[key]}")
    if sizes["max_items"] > sizes["queue_size"]:
        raise SourceConfigError(f"{where}.max_items ({sizes['max_items']}) must be <= queue_size "
                                f"({sizes['queue_size']}): a request is queued all or nothing")
    limits = HttpLimits(opts.get("max_connections", DEFAULT_MAX_CONNECTIONS),
                        float(opts.get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S)), sizes["max_body_bytes"])
    problem = limits.problem()
    if problem:
        raise SourceConfigError(f"{where}.{problem}")
    return WebhookSource(token, name=name, host=host, port=port, path=path, stop=ctx.stop,
                         store=ctx.checkpoints, max_connections=limits.max_connections,
                         request_timeout_s=limits.request_timeout_s, **sizes)
