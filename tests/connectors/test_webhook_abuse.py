"""Abuse of the webhook source's HTTP server (issue #14 point 10), over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from connectors.source import Rejected, SourceConfigError, SourceContext
from connectors.webhook import WebhookSource, build

from ..http_abuse import (WAIT, IdleSockets, exchange, get_status, served_again, slow_loris, status_of,
                          threads_stay_below)

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture()
def source() -> Iterator[Any]:
    started: list[WebhookSource] = []

    def make(**table: Any) -> WebhookSource:
        ctx = SourceContext(stop=threading.Event(), checkpoints=None, env={"HOOK_TOKEN": TOKEN})
        src = build({"type": "webhook", "token_env": "HOOK_TOKEN", "port": 0, **table}, "sources[0]", ctx)
        src.poll_s = 0.02
        src.start()
        started.append(src)
        return src

    yield make
    for src in started:
        src.close()


BODY = orjson.dumps({"id": "t:1", "source": "tool", "brand": "acme", "text": "hi", "created_at": "2026-11-23T10:00:00Z"})


def post_head(length: str | None = None, extra: str = "") -> bytes:
    head = (f"POST /mentions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\n")
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + extra + "\r\n").encode("latin-1")




def test_a_slow_loris_is_cut_at_the_request_deadline_and_others_are_served(source: Any) -> None:
    src = source(request_timeout_s=2)
    health = f"http://127.0.0.1:{src.port}/mentions/health"
    result: list[float] = []
    sent = threading.Event()
    loris = threading.Thread(target=lambda: result.append(
        slow_loris(src.port, b"GET /mentions/health HTTP/1.1\r\nHost: x\r\nX-Slow: ", sent=sent)))
    loris.start()
    assert sent.wait(WAIT)
    assert get_status(health) == 200  # served meanwhile
    loris.join(15)
    assert result and 1.5 <= result[0] <= 3.5, result  # the total deadline, not 30 s of silence per byte


@pytest.mark.parametrize("head, status", [
    (post_head("-1"), 400),
    (post_head(str(len(BODY)), "Content-Length: 5\r\n"), 400),  # two lengths: a desync behind a proxy
    (post_head("12", "Transfer-Encoding: chunked\r\n"), 400),
    (post_head("1e3"), 400),
    (post_head("\xb2"), 400),  # a superscript two: str.isdigit() says yes, int() says no
    (post_head("99999999999"), 413),
])
def test_bad_framing_is_refused_before_any_body_is_read(source: Any, head: bytes, status: int) -> None:
    src = source(max_body_bytes=1024)
    answer = exchange(src.port, head + BODY)
    assert status_of(answer) == status, answer[:300]
    assert src.health()["accepted"] == 0


def test_idle_sockets_beyond_the_cap_get_a_prompt_503_and_threads_stay_bounded(source: Any) -> None:
    src = source(max_connections=4, request_timeout_s=30)
    before = threading.active_count()
    idle = IdleSockets(src.port, 10)
    try:
        assert idle.collect(6) == 6  # the 6 over the cap are answered and closed at once
        assert all(status_of(a) in (503, None) for a in idle.answers.values())
        assert any(status_of(a) == 503 for a in idle.answers.values())
        assert threads_stay_below(before + 4)
        assert src.health()["turned_away"] == 6
        started = time.monotonic()
        assert get_status(f"http://127.0.0.1:{src.port}/mentions/health") == 503
        assert time.monotonic() - started < 1.0
    finally:
        idle.close()
    assert served_again(f"http://127.0.0.1:{src.port}/mentions/health"), \
        "slots were not freed when the idle sockets closed"


def test_escape_codes_in_the_request_line_are_logged_escaped(source: Any, caplog: pytest.LogCaptureFixture) -> None:
    src = source()
    caplog.set_level(logging.DEBUG, logger="connectors")
    answer = exchange(src.port, b"GET /\x1b[2J\x1b]0;pwned\x07\x9b31m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 404
    text = caplog.text
    assert "\\x1b[2J" in text
    assert not any(c in text for c in "\x1b\x07\x9b")


@pytest.mark.parametrize("brand", ["..", "acme/../x", "acme\u202e", "ac\u200bme", "a/b", "\u2066acme"])
def test_spoofing_brand_names_are_rejected_with_a_reason(source: Any, brand: str) -> None:
    src = source()
    body = orjson.dumps([{"id": "t:2", "source": "tool", "brand": brand, "text": "hi",
                          "created_at": "2026-11-23T10:00:00Z"}])
    answer = exchange(src.port, post_head(str(len(body)), "Connection: close\r\n") + body)
    doc = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert doc["accepted"] == 0 and doc["rejected"][0]["reason"] == "invalid_value"
    assert "brand" in doc["rejected"][0]["detail"]
    item = src._queue.get_nowait()[1]
    assert isinstance(item, Rejected) and item.reason == "invalid_value"


@pytest.mark.parametrize("table, key", [({"max_connections": 0}, "max_connections"),
                                        ({"request_timeout_s": 0}, "request_timeout_s"),
                                        ({"request_timeout_s": "10"}, "request_timeout_s")])
def test_limits_are_checked_at_start_up(table: dict[str, Any], key: str) -> None:
    ctx = SourceContext(stop=threading.Event(), checkpoints=None, env={"HOOK_TOKEN": TOKEN})
    with pytest.raises(SourceConfigError, match=rf"\.{key} (must|has the wrong type)"):
        build({"type": "webhook", "token_env": "HOOK_TOKEN", **table}, "sources[0]", ctx)
