"""The on-call HTTP API of the notify role: acknowledge, silence, list crises.

Why: the person paged at 3 am acknowledges from a phone or a chat bot, not
from a shell on the server.  ``[oncall] http_listen`` turns it on (off by
default; bind it to loopback or put it behind a TLS proxy), and every
endpoint but the probes requires ``Authorization: Bearer <token>`` with the
token from the environment variable named by ``[oncall] token_env``::

    GET    /livez                        (no token) 200 while the notify loop turns and its outbox can be
                                         written or the outage is within [outbox] max_unavailable_s;
                                         else 503: a liveness probe (restart it)
    GET    /readyz                       (no token) 200 while the outbox can be written, else 503
    GET    /healthz                      {"status": "ok"}            (no token; 503 with the reason while
                                                                  the outbox cannot be written; kept as it
                                                                  was for compatibility, the same as /readyz)
    GET    /crises[?open=1]              {"crises": [...], "summary": {...}}
    POST   /crises/<crisis id>/ack       {"by": "Ana", "note": "on it"}  -> the crisis with its response times
    GET    /silences                     {"silences": [...]}  (active ones)
    POST   /silences                     {"brand": "acme", "route": "", "minutes": 120, "by": "Ana",
                                          "comment": "planned campaign"}  -> 201 {"id": 3}
    DELETE /silences/<id>                expire it now

Errors answer ``{"error": "..."}`` with 400 (bad request, says what is
wrong: a silence lasts at most 30 days and names a known brand or route),
401 (no or wrong token), 404 (unknown crisis or silence), 409 (the crisis
was resolved before anyone acknowledged it), 413, or 503 (the database is
locked or the disk full: nothing was saved, try again).  The server is
:mod:`connectors.http_server`'s, with the ``[http]`` limits: 400 for an
ambiguous ``Content-Length`` (two of them, with ``Transfer-Encoding``, not a
number), 411 for a chunked body, 413 over 16 KiB, 408 past
``request_timeout_s``, 503 beyond ``max_connections`` open connections.
The state lives in the outbox database: an acknowledgement made here is
announced by the notify loop within a second.

``/metrics`` is not served here: Prometheus would need this token, which
acknowledges and silences — a scraper must not hold what can mute a page.
The notify role serves its metrics and the same probes on ``[oncall]
metrics_listen``, without a token (:func:`listener.metrics.serving_notify`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from connectors.http_server import HardenedHandler, HttpLimits, Refused
from connectors.http_server import serve_in_thread as start_server

from .config import ConfigError, HttpSettings, OnCallSettings
from .oncall import AlreadyResolved, OnCallStore, UnknownCrisis, database_error, silence_minutes

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024

Health = Callable[[], tuple[bool, dict[str, Any]]]
"""(healthy, the JSON body of a probe): the notify loop's :meth:`OutboxHealth.check
<listener.notify.OutboxHealth.check>` (``/healthz``), ``live`` (``/livez``) or ``ready`` (``/readyz``)."""

_OK: Health = lambda: (True, {"status": "ok"})  # noqa: E731


def parse_listen(value: str, key: str = "oncall.http_listen") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{key} must be host:port, e.g. 127.0.0.1:8787; got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _handler(store: OnCallStore, token: str, probes: Mapping[str, Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(HardenedHandler):
        http_log = log
        log_level = logging.INFO
        log_name = "api"

        def _answer(self, status: int, doc: Any) -> None:
            self.send_json(status, doc, {"WWW-Authenticate": 'Bearer realm="crisiswatch"'} if status == 401 else None)

        def _route(self, method: str) -> None:
            try:
                url = urllib.parse.urlsplit(self.path)
                parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
                if len(parts) == 1 and parts[0] in probes and method == "GET":
                    ok, doc = probes[parts[0]]()
                    return self._answer(200 if ok else 503, doc)
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    raise _Error(401, "missing or wrong token: send Authorization: Bearer <token>")
                status, doc = self._dispatch(method, parts, urllib.parse.parse_qs(url.query))
                self._answer(status, doc)
            except _Error as err:
                self._answer(err.status, {"error": str(err)})
            except Refused as err:
                self._answer(err.status, {"error": err.detail})
            except UnknownCrisis as err:
                self._answer(404, {"error": str(err).strip("'\"")})
            except AlreadyResolved as err:
                self._answer(409, {"error": str(err)})
            except ValueError as err:
                self._answer(400, {"error": str(err)})
            except sqlite3.OperationalError as err:
                self._answer(503, {"error": database_error(err)})

        def _body(self) -> dict[str, Any]:
            try:  # the length is checked (at most MAX_BODY, else 413) before the request gets here
                doc = orjson.loads(self.read_body() or b"{}")
            except orjson.JSONDecodeError:
                raise _Error(400, "the body must be a JSON object") from None
            if not isinstance(doc, dict):
                raise _Error(400, "the body must be a JSON object")
            return doc

        def _dispatch(self, method: str, parts: list[str], query: dict[str, list[str]]) -> tuple[int, Any]:
            if parts == ["crises"] and method == "GET":
                crises = store.crises(open_only=query.get("open", ["0"])[0] in ("1", "true"))
                return 200, {"crises": crises, "summary": store.summary(crises)}
            if len(parts) == 3 and parts[0] == "crises" and parts[2] == "ack" and method == "POST":
                body = self._body()
                return 200, store.acknowledge(parts[1], str(body.get("by") or ""), str(body.get("note") or ""))
            if parts == ["silences"] and method == "GET":
                return 200, {"silences": store.silences()}
            if parts == ["silences"] and method == "POST":
                body = self._body()
                minutes = silence_minutes(body.get("minutes"), "minutes")
                now = store.clock()
                sid = store.add_silence(str(body.get("brand") or ""), str(body.get("route") or ""), now,
                                        now + minutes * 60, str(body.get("by") or ""), str(body.get("comment") or ""),
                                        "http")
                return 201, {"id": sid}
            if len(parts) == 2 and parts[0] == "silences" and method == "DELETE" and parts[1].isdigit():
                if not store.expire_silence(int(parts[1])):
                    raise _Error(404, f"no active silence {parts[1]}")
                return 200, {"id": int(parts[1]), "expired": True}
            if parts == ["metrics"]:
                raise _Error(404, "metrics are not served on the API: set [oncall] metrics_listen")
            raise _Error(404, f"no endpoint {method} /{'/'.join(parts)}")

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

    return Handler


def api_token(settings: OnCallSettings, env: Mapping[str, str]) -> str:
    """The API's token, checked at start-up: required whenever the API is on."""
    token = env.get(settings.token_env, "") if settings.token_env else ""
    if len(token) < 16:
        raise ConfigError("oncall.http_listen is set, so oncall.token_env must name an environment variable that "
                          "holds a token of at least 16 characters (e.g. `openssl rand -hex 24`): the API "
                          "changes state")
    return token


@contextmanager
def serve_in_thread(address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                    name: str, limits: HttpLimits | None = None) -> Iterator[tuple[str, int]]:
    """Serve HTTP in a daemon thread for the duration of the block; yields the bound (host, port).

    The server is :class:`connectors.http_server.HardenedServer`: at most ``limits.max_connections``
    connections, a total deadline per request, strict ``Content-Length``, escaped log lines."""
    server = start_server(address, handler, name, limits)
    log.info("%s on http://%s:%d", name, *server.server_address[:2])
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def serving(store: OnCallStore, listen: str, token: str, health: Health | None = None,
            http: HttpSettings | None = None, live: Health | None = None,
            ready: Health | None = None) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """Serve the on-call API in a thread for the duration of the block; yields the bound (host, port).
    ``/healthz``, ``/livez`` and ``/readyz`` answer what ``health``, ``live`` and ``ready`` say (200 or 503
    with its body; ``ready`` defaults to ``health``, an absent one to 200); ``http``: the ``[http]`` limits."""
    probes = {"healthz": health or _OK, "livez": live or _OK, "readyz": ready or health or _OK}
    return serve_in_thread(parse_listen(listen), _handler(store, token, probes), "on-call API",
                           (http or HttpSettings()).limits(MAX_BODY))
