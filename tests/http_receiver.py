"""A real HTTP server on loopback that records what it receives: the receiving end in notifier and action tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import orjson


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    status: int
    """What the receiver answered."""


class HttpReceiver:
    """Answers each request with the next status of ``script`` (200 once it is empty) and records it."""

    def __init__(self) -> None:
        self.url = ""
        self.script: list[int] = []
        self.requests: list[Request] = []
        self.arrived = threading.Condition()

    @property
    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.status == 200]

    def json(self) -> list[Any]:
        """The JSON bodies of the accepted requests."""
        return [orjson.loads(r.body) for r in self.accepted]

    def wait_for(self, predicate: Any, timeout_s: float = 60.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self), timeout_s)


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.script.pop(0) if receiver.script else 200
            with receiver.arrived:
                receiver.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in
                                                                           self.headers.items()}, body, status))
                receiver.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_PATCH = do_DELETE = _record  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
