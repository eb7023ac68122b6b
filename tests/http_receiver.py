"""A real HTTP server on loopback that records what it receives: the receiving end in notifier and action tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import orjson

Answer = tuple[int, Mapping[str, str], bytes]


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return orjson.loads(self.body)


class HttpReceiver:
    """Answers each request with the next scripted answer — a status, or (status, headers, body) — and
    ``default`` once the script is empty; records every request."""

    def __init__(self, default: Answer = (200, {}, b""), path: str = "", content_type: str | None = None) -> None:
        self.base = ""
        self.path = path
        self.default = default
        self.content_type = content_type
        self.script: list[int | Answer] = []
        self.delay_s = 0.0
        """Seconds to spend on each request before answering it (a slow receiver); the request is recorded
        when the answer is ready, whether or not the client is still waiting for it."""
        self.requests: list[Request] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        """The receiver's URL (its ``path`` on the server)."""
        return self.base + self.path

    def url_for(self, path: str) -> str:
        return self.base + path

    def answer(self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> None:
        """Script the next answer."""
        self.script.append((status, headers or {}, body))

    @property
    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def json(self) -> list[Any]:
        """The JSON bodies of the accepted requests."""
        return [r.json() for r in self.accepted]

    def wait_for(self, predicate: Any, timeout_s: float = 60.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self), timeout_s)

    def _next(self) -> Answer:
        if not self.script:
            return self.default
        step = self.script.pop(0)
        return (step, {}, b"") if isinstance(step, int) else step


@contextmanager
def http_receiver(default: Answer = (200, {}, b""), path: str = "",
                  content_type: str | None = None) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(default, path, content_type)

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            status, headers, answer = receiver._next()
            with receiver.arrived:
                receiver.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in
                                                                           self.headers.items()}, body, status))
                receiver.arrived.notify_all()
            self.send_response(status)
            if receiver.content_type and "Content-Type" not in headers:
                self.send_header("Content-Type", receiver.content_type)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer)))
            try:
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a slow receiver): the request was processed all the same

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    receiver.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
