"""Abuse of the on-call API and of /metrics + /healthz (issue #14 point 10), over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from listener.api import serving
from listener.config import ConfigError, HttpSettings, load
from listener.metrics import serving as serving_metrics
from listener.oncall import OnCallStore
from listener.outbox import Outbox
from listener.pipeline import Pipeline
from listener.service import ListenerStats

from ..http_abuse import (WAIT, IdleSockets, exchange, get_status, served_again, slow_loris, status_of,
                          threads_stay_below)

TOKEN = "k" * 32


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[OnCallStore]:
    outbox = Outbox(tmp_path / "outbox.db")
    yield OnCallStore(outbox)
    outbox.close()


def fake_listener() -> object:
    return type("L", (), {"stats": ListenerStats(last_poll=time.time()), "pipeline": Pipeline()})()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n").encode("latin-1") + body


ACK = b'{"by": "Ana"}'


@pytest.mark.parametrize("request_bytes, status", [
    (post("/crises/acme:1/ack", ACK, "Content-Length: -1\r\n"), 400),
    (post("/crises/acme:1/ack", ACK, f"Content-Length: {len(ACK)}\r\nContent-Length: 2\r\n"), 400),
    (post("/crises/acme:1/ack", ACK, f"Content-Length: {len(ACK)}\r\nTransfer-Encoding: chunked\r\n"), 400),
    (post("/crises/acme:1/ack", ACK, "Content-Length: 0x0d\r\n"), 400),
    (post("/crises/acme:1/ack", ACK, "Transfer-Encoding: chunked\r\n"), 411),
])
def test_the_api_refuses_ambiguous_framing(store: OnCallStore, request_bytes: bytes, status: int) -> None:
    with serving(store, "127.0.0.1:0", TOKEN) as (_, port):
        answer = exchange(port, request_bytes, timeout=2.0)
        assert status_of(answer) == status, answer[:300]
        assert b'"error"' in answer


def test_the_api_cuts_a_slow_loris_at_the_deadline_and_serves_others(store: OnCallStore) -> None:
    with serving(store, "127.0.0.1:0", TOKEN, http=HttpSettings(request_timeout_s=2)) as (_, port):
        result: list[float] = []
        sent = threading.Event()
        loris = threading.Thread(target=lambda: result.append(
            slow_loris(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", sent=sent)))
        loris.start()
        assert sent.wait(WAIT)
        assert get_status(f"http://127.0.0.1:{port}/healthz") == 200
        loris.join(15)
        assert result and 1.5 <= result[0] <= 3.5, result


def test_the_api_holds_at_most_max_connections_threads(store: OnCallStore) -> None:
    cap = HttpSettings().max_connections
    with serving(store, "127.0.0.1:0", TOKEN) as (_, port):
        before = threading.active_count()
        idle = IdleSockets(port, cap + 8)
        try:
            assert idle.collect(8) == 8
            assert any(status_of(a) == 503 for a in idle.answers.values())
            assert threads_stay_below(before + cap)
            started = time.monotonic()
            assert get_status(f"http://127.0.0.1:{port}/healthz") == 503
            assert time.monotonic() - started < 1.0
        finally:
            idle.close()
        assert served_again(f"http://127.0.0.1:{port}/healthz")


def test_the_api_logs_request_lines_with_escape_codes_escaped(store: OnCallStore,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="listener.api")
    with serving(store, "127.0.0.1:0", TOKEN) as (_, port):
        answer = exchange(port, b"GET /\x1b[2J\x1b[31mERROR\x9b0m\xe2\x80\xae HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 401
    assert "\\x1b[2J" in caplog.text and "\\x9b" in caplog.text
    assert not any(c in caplog.text for c in "\x1b\x9b\u202e")


def test_metrics_refuse_bodies_and_bound_their_threads() -> None:
    with serving_metrics(fake_listener(), ("127.0.0.1", 0),  # type: ignore[arg-type]
                         http=HttpSettings(max_connections=4, request_timeout_s=30)) as (_, port):
        answer = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nxx")
        assert status_of(answer) == 413
        answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        assert status_of(answer) == 400
        before = threading.active_count()
        idle = IdleSockets(port, 10)
        try:
            assert idle.collect(6) == 6
            assert threads_stay_below(before + 4)
        finally:
            idle.close()
        assert served_again(f"http://127.0.0.1:{port}/metrics")


def test_metrics_cut_a_slow_loris() -> None:
    with serving_metrics(fake_listener(), ("127.0.0.1", 0),  # type: ignore[arg-type]
                         http=HttpSettings(request_timeout_s=1)) as (_, port):
        took = slow_loris(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ", interval_s=0.25)
        assert 0.7 <= took <= 2.5, took


@pytest.mark.parametrize("key, value", [("max_connections", 0), ("request_timeout_s", 0), ("request_timeout_s", -1),
                                        ("max_connections", 100_000)])
def test_http_settings_are_checked(tmp_path: Path, key: str, value: float) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[http]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=f"http.{key}"):
        load(path, env={})
    assert load(None, env={f"CRISISWATCH__HTTP__{key.upper()}": "7"}).http == HttpSettings(**{key: 7})
