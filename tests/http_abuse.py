"""Abusive HTTP clients on raw loopback sockets: the probes of issue #14 point 10, shared by the tests of the
three stdlib servers (on-call API, /metrics, webhook source)."""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.error
import urllib.request

from .waiting import wait_until

WAIT = 5.0


def exchange(port: int, data: bytes, timeout: float = WAIT) -> bytes:
    """Send ``data`` and read until the server closes (or ``timeout`` passes: then what came so far)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    """The status code of a raw HTTP answer, None if there is none."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def get_status(url: str, timeout: float = WAIT) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.read()
        return int(err.code)


def slow_loris(port: int, head: bytes, interval_s: float = 0.5, give_up_s: float = 15.0,
               sent: threading.Event | None = None) -> float:
    """Send ``head`` then one header byte every ``interval_s``; the seconds until the server hung up.
    ``sent`` is set once the head is sent (the connection holds a server thread from then on)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(head)
        if sent is not None:
            sent.set()
        while time.monotonic() - start < give_up_s:
            try:
                s.sendall(b"a")
            except OSError:  # reset / broken pipe: closed
                return time.monotonic() - start
            readable, _, _ = select.select([s], [], [], interval_s)
            if readable:
                try:
                    s.recv(65536)  # a 408 then EOF, or EOF
                except OSError:
                    pass
                return time.monotonic() - start
    return time.monotonic() - start


class IdleSockets:
    """``n`` connections that connect and then say nothing; which of them the server answered and closed."""

    def __init__(self, port: int, n: int) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(n)]
        self.answers: dict[int, bytes] = {}

    def collect(self, want: int, timeout: float = WAIT) -> int:
        """Wait until ``want`` of them were answered and closed by the server (or ``timeout``); how many were."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < want and time.monotonic() < deadline:
            pending = [s for i, s in enumerate(self.socks) if i not in self.answers]
            readable, _, _ = select.select(pending, [], [], max(0.0, min(0.2, deadline - time.monotonic())))
            for s in readable:
                i = self.socks.index(s)
                data = b""
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                except OSError:
                    pass
                self.answers[i] = data
        return len(self.answers)

    def close(self) -> None:
        for s in self.socks:
            s.close()


def threads_stay_below(limit: int, for_s: float = 0.5) -> bool:
    """The process never runs more than ``limit`` threads during ``for_s`` seconds."""
    deadline = time.monotonic() + for_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        if threading.active_count() > limit:
            return False
        pause.wait(0.02)
    return True


def served_again(url: str) -> bool:
    """Once the abusive sockets are gone, the server answers 200 again within ``WAIT``."""
    return wait_until(lambda: get_status(url) == 200, WAIT, 0.05)
