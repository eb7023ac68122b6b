"""The hardened stdlib HTTP server under every endpoint crisiswatch serves.

Three servers use it: the on-call API (:mod:`listener.api`), a listener's
``/metrics`` and ``/healthz`` (:mod:`listener.metrics`) and the webhook source
(:mod:`connectors.webhook`, which receives posts from anyone who can reach it).
It lives in ``connectors`` because connectors must not import the listener.

What plain :class:`http.server.ThreadingHTTPServer` let a client do, and what
this module does instead (issue #14, point 10):

* **Threads**: one thread per connection, without limit (40 idle sockets held
  93 threads).  Here at most ``max_connections`` connections are served at
  once; one more is answered ``503`` with ``Retry-After: 1`` and closed by the
  accepting thread at once, without starting a thread.
* **Time**: no socket timeout at all (API, metrics), or one that restarts on
  every byte received (the webhook's 30 s: a header line every 10 s held a
  thread for 48 minutes).  Here every request has one *total* deadline,
  ``request_timeout_s`` from the moment the server starts waiting for it
  (idle keep-alive time, request line, headers and body together); each
  ``recv`` waits only for what is left of it.  Past it the client gets
  ``408`` and the connection is closed.  Each write of the answer has its own
  ``request_timeout_s`` (a client that stops reading cannot hold a thread).
* **Framing**: a ``Content-Length`` of ``-1`` read to the end of the stream,
  two conflicting ``Content-Length`` headers were accepted (the first one
  won: a request desync behind a proxy that believes the last).  Here the
  body length must be exactly one ``Content-Length`` of ASCII digits: two of
  them, one with ``Transfer-Encoding``, or anything not a number is ``400``;
  ``Transfer-Encoding`` alone is ``411`` (chunked bodies are not supported);
  a length over the server's ``max_body_bytes`` is ``413`` — all refused
  from the headers, before any of the body is read.
* **Logs**: the request line went raw into the log (INFO for the API), so an
  unauthenticated client could write terminal escape codes into it.  Here
  every logged request line has its control and invisible format characters
  escaped (``\\x1b``) and is cut at 300 characters (:func:`printable`).

Choice: harden the stdlib server in this one small module rather than move to
an ASGI server (uvicorn + starlette).  The move would add two dependencies
that are not installed, rewrite three servers (the webhook's
``Expect: 100-continue`` and keep-alive behaviour is tested in detail), and
still leave part of the problem: uvicorn bounds idle keep-alive time but has
no total deadline for a request's headers and body, so a slow-loris and the
thread/task count would still need code of ours.  This module is some 200
lines of code (the rest is documentation), needs no dependency, and gives the
three servers the same limits and the same tests.

Followed: the ``socketserver`` and ``http.server`` documentation and source
(``ThreadingMixIn.process_request``, ``handle_one_request``), RFC 9112 §6.3
(message body length: ``Transfer-Encoding`` with ``Content-Length`` and
invalid ``Content-Length`` values are errors), RFC 9110 §15.5.9/§15.5.12/
§15.5.14 (408, 411, 413) and §15.6.4 (503 + ``Retry-After``).
"""

from __future__ import annotations

import io
import logging
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_MAX_BODY_BYTES = 16 * 1024
MAX_LOGGED_CHARS = 300
DRAIN_SLACK = 64 * 1024
"""How far past ``max_body_bytes`` a refused body is still read (within the deadline) so that the client
reads the answer instead of a connection reset; a bigger one closes the connection."""

_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpLimits:
    """The limits of one server."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Connections served at once; one more is answered 503 and closed."""
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    """Total time for one request: waiting for it, its request line, headers and body."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Larger bodies are refused with 413 from their Content-Length."""

    def problem(self) -> str | None:
        """What is wrong with these limits (a message naming the key), None if nothing."""
        if isinstance(self.max_connections, bool) or not 1 <= self.max_connections <= 10_000:
            return f"max_connections must be 1..10000, got {self.max_connections!r}"
        if not 0 < self.request_timeout_s <= 3600:
            return f"request_timeout_s must be above 0 and at most 3600 seconds, got {self.request_timeout_s!r}"
        if self.max_body_bytes < 0:
            return f"max_body_bytes must be >= 0, got {self.max_body_bytes!r}"
        return None


class Refused(Exception):
    """Ends a request with ``status`` and a JSON error (``error`` a short code, ``detail`` for people)."""

    def __init__(self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})


def _is_hidden(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def printable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` safe for a log line: control, format (bidi, zero-width) and line-separator characters and
    backslashes escaped as in a Python literal (``\\x1b``, ``\\u202e``), cut at ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + f"...({len(text) - limit} more)"
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if c == "\\" or _is_hidden(c) else c for c in text)


def content_length(headers: Any, limit: int | None = None) -> int:
    """The body's length from the headers, strictly (RFC 9112 §6.3); 0 when there is none.

    Raises :class:`Refused`: 400 for two ``Content-Length`` headers, ``Transfer-Encoding`` with one, or a
    value that is not ASCII digits (``-1``, ``1e3``, ``²``); 411 for ``Transfer-Encoding`` alone; 413 over
    ``limit``."""
    lengths = headers.get_all("Content-Length") or []
    encodings = headers.get_all("Transfer-Encoding") or []
    if encodings and lengths:
        raise Refused(400, "bad_framing", "Transfer-Encoding and Content-Length together: send only a "
                                          "Content-Length")
    if encodings:
        raise Refused(411, "length_required", "send the body with a Content-Length (chunked is not supported)")
    if not lengths:
        return 0  # HTTP/1.1: neither Content-Length nor Transfer-Encoding means no body
    if len(lengths) > 1:
        raise Refused(400, "bad_content_length", f"{len(lengths)} Content-Length headers: send exactly one")
    value = lengths[0].strip(" \t")
    if not _DIGITS.fullmatch(value):
        raise Refused(400, "bad_content_length", f"Content-Length is not a number: {printable(value, 40)!r}")
    length = int(value)
    if limit is not None and length > limit:
        raise Refused(413, "too_large", f"body is {length} bytes, the limit is {limit}")
    return length


class HardenedServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` with a bounded number of connection threads; IPv6 for a host with ':'.

    ``limits`` are read by :class:`HardenedHandler`.  ``refused`` counts the connections turned away."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    """The listen backlog (the stdlib's 5 makes clients retry their SYN after a second in a burst): the
    accepting thread answers connections over the limit at once, so the queue stays short."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 limits: HttpLimits | None = None, name: str = "http") -> None:
        self.limits = limits or HttpLimits()
        problem = self.limits.problem()
        if problem:
            raise ValueError(problem)
        self.name = name
        self.refused = 0
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._last_warning = 0.0
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._turn_away(request, client_address)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _turn_away(self, request: socket.socket, client_address: Any) -> None:
        """503 and close, from the accepting thread: never blocks it (a non-blocking send of one packet)."""
        self.refused += 1
        body = orjson.dumps({"error": "busy", "detail": f"more than {self.limits.max_connections} connections: "
                                                        "retry later"})
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode("ascii")
        try:
            request.setblocking(False)
            request.send(head + body)
        except OSError:
            pass
        self.shutdown_request(request)
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("%s: %d connections open, the limit: %s turned away with 503 (%d so far)", self.name,
                        self.limits.max_connections, printable(str(client_address[0])), self.refused)


class _DeadlineReader(io.RawIOBase):
    """Reads the connection, each ``recv`` waiting only for what is left of the request's deadline."""

    def __init__(self, handler: HardenedHandler) -> None:
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request deadline passed")
        sock = self.handler.connection
        sock.settimeout(left)
        return sock.recv_into(buffer)


class _TimedWriter(io.BufferedIOBase):
    """Writes the answer; each write may take at most ``request_timeout_s`` (``sendall``'s total timeout)."""

    def __init__(self, handler: HardenedHandler) -> None:
        self.handler = handler

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        sock = self.handler.connection
        sock.settimeout(self.handler.server.limits.request_timeout_s)
        sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes


class HardenedHandler(BaseHTTPRequestHandler):
    """A request handler that enforces :class:`HttpLimits` and logs request lines escaped.

    Before ``do_<METHOD>`` runs, the body's framing is checked (:func:`content_length` with the server's
    ``max_body_bytes``) and :attr:`body_length` set; read the body with :meth:`read_body`.  A refusal goes
    through :meth:`refuse`, which subclasses may override to answer in their own format.  Log lines go to
    ``http_log`` at ``log_level`` with the prefix ``log_name``.
    """

    server: HardenedServer
    server_version = "crisiswatch"
    sys_version = ""
    http_log = log
    log_level = logging.DEBUG
    log_name = "http"
    body_length = 0
    body_read = False
    deadline = 0.0
    drain_slack = DRAIN_SLACK

    def setup(self) -> None:  # StreamRequestHandler.setup with deadline-aware files instead of makefile()
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = io.BufferedReader(_DeadlineReader(self), io.DEFAULT_BUFFER_SIZE)
        self.wfile = _TimedWriter(self)

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.server.limits.request_timeout_s
        self.body_length, self.body_read, self._answered = 0, False, False
        self._framing_checked = False
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError) as exc:  # a write timed out, or the client went away
            self.log_message("connection dropped: %s", exc)
            self.close_connection = True

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        if format.startswith("Request timed out"):  # the stdlib closes the connection after this
            if not self._answered:  # best effort: the client may not be reading
                try:
                    self.connection.settimeout(0.5)
                    self.connection.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                                            b"Connection: close\r\n\r\n")
                except OSError:
                    pass
            self.http_log.info("%s %s: request not received within %gs: closed", self.log_name,
                               self.address_string(), self.server.limits.request_timeout_s)
            return
        super().log_error(format, *args)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        self.http_log.log(self.log_level, "%s %s %s", self.log_name, printable(self.address_string()),
                          printable(format % args))

    def send_response(self, code: int, message: str | None = None) -> None:
        self._answered = True
        super().send_response(code, message)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        return self._framing_checked or self.check_framing()

    def handle_expect_100(self) -> bool:
        if not self.check_framing():
            return False
        return super().handle_expect_100()

    def check_framing(self) -> bool:
        """Check and record the body's length; False after refusing the request."""
        self._framing_checked = True
        try:
            self.body_length = content_length(self.headers, self.server.limits.max_body_bytes)
        except Refused as refused:
            if refused.status != 413:
                self.close_connection = True  # the body's end is unknown: nothing after it can be trusted
            self.refuse(refused)
            return False
        return True

    def read_body(self) -> bytes:
        """The request's body (its checked ``Content-Length``), read within the deadline."""
        body = self.rfile.read(self.body_length) if self.body_length else b""
        self.body_read = True
        if len(body) < self.body_length:
            self.close_connection = True
            raise Refused(400, "incomplete_body", f"body ended after {len(body)} of {self.body_length} bytes")
        return body

    def discard_body(self) -> None:
        """Drop an unread body so the connection can go on, or mark it to close if the body is too big."""
        if self.body_read or self.close_connection:
            return
        left = self.body_length
        if left > self.server.limits.max_body_bytes + self.drain_slack:
            self.close_connection = True
            return
        while left > 0:  # in chunks: a refused body is never held in memory
            chunk = self.rfile.read(min(_CHUNK, left))
            if not chunk:
                self.close_connection = True
                return
            left -= len(chunk)
        self.body_read = True

    def refuse(self, refused: Refused) -> None:
        """Answer a refusal as JSON ``{"error": detail}`` (override for another format)."""
        self.discard_body()
        self.send_json(refused.status, {"error": refused.detail}, refused.headers)

    def send_json(self, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> None:
        data = orjson.dumps(doc)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection and self.request_version != "HTTP/0.9":
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def serve_in_thread(address: tuple[str, int], handler: type[BaseHTTPRequestHandler], name: str,
                    limits: HttpLimits | None = None) -> HardenedServer:
    """Start a :class:`HardenedServer` in a daemon thread; stop it with ``shutdown()`` + ``server_close()``."""
    server = HardenedServer(address, handler, limits, name)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True).start()
    return server
