from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.checkpoint import CheckpointStore, SeenIds
from connectors.http import HttpClient, SourceUnavailable, TokenBucket, is_loopback, retry_after_seconds


class Script:
    """Answers requests from a list of (status, headers, body); records what it was asked."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            script.paths.append(self.path)
            script.headers.append(dict(self.headers.items()))
            status, headers, body = script.answers.pop(0)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


NOW = 1_795_392_000.0  # 2026-11-23T00:00:00Z


def client(sleeps: list[float], **kw: object) -> HttpClient:
    # a budget so large that it never waits: the recorded sleeps are the retries' alone
    return HttpClient("test", requests_per_minute=1e12, sleep=sleeps.append, wall=lambda: NOW, **kw)


def test_retry_after_is_honoured_on_429_then_success(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(429, {"Retry-After": "7"}, b""), (200, {}, b'{"ok": 1}')]
    sleeps: list[float] = []
    c = client(sleeps)
    r = c.get(f"{base}/x", params={"q": "acme corp"})
    assert r.json() == {"ok": 1}
    assert sleeps == [7.0]
    assert c.rate_limited == 1 and c.retries == 1
    assert script.paths == ["/x?q=acme+corp"] * 2
    assert script.headers[0]["User-Agent"].startswith("crisiswatch/")


def test_server_errors_back_off_exponentially_with_jitter_then_give_up(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(503, {}, b"")] * 4
    sleeps: list[float] = []
    c = client(sleeps, max_retries=3, backoff_s=1.0)
    with pytest.raises(SourceUnavailable) as info:
        c.get(f"{base}/y", params={"token": "SECRET"})
    assert "SECRET" not in str(info.value) and "4 times" in str(info.value)
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, [1, 2, 4], strict=True))


def test_client_errors_are_not_retried(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(404, {}, b"")]
    sleeps: list[float] = []
    with pytest.raises(SourceUnavailable, match="404"):
        client(sleeps).get(f"{base}/z")
    assert sleeps == []


def test_connection_refused_is_retried_and_reported() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(SourceUnavailable, match="failed 3 times"):
        client(sleeps, max_retries=2).get(f"http://127.0.0.1:{port}/")
    assert len(sleeps) == 2


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert retry_after_seconds("120", 0) == 120.0
    assert retry_after_seconds("soon", 0) is None


def test_token_bucket_spaces_requests() -> None:
    now = [0.0]
    bucket = TokenBucket(rate_per_minute=60, clock=lambda: now[0])
    assert bucket.reserve() == 0
    assert bucket.reserve() == pytest.approx(1.0)
    assert bucket.reserve() == pytest.approx(2.0)  # reserved: each caller gets its own slot
    now[0] += 3.0
    assert bucket.reserve() == 0


def test_budget_makes_one_sleep_per_request_even_with_a_fake_sleep(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(200, {}, b"{}")] * 3
    sleeps: list[float] = []
    now = [0.0]
    c = HttpClient("test", requests_per_minute=30, sleep=sleeps.append, clock=lambda: now[0])
    for _ in range(3):
        c.get(f"{base}/")
    assert sleeps == [pytest.approx(2.0), pytest.approx(4.0)]


def test_checkpoints_are_atomic_json_per_source(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "cp")
    assert store.load("reddit/main") == {}
    store.save("reddit/main", {"after": "t3_x", "seen": ["a"]})
    assert CheckpointStore(tmp_path / "cp").load("reddit/main") == {"after": "t3_x", "seen": ["a"]}
    assert [p.name for p in (tmp_path / "cp").iterdir()] == ["reddit_main.json"]


def test_seen_ids_are_bounded_and_ordered() -> None:
    seen = SeenIds(["a", "b"], capacity=3)
    assert seen.add("c") and not seen.add("a")
    seen.add("d")
    assert "a" not in seen and seen.to_list() == ["b", "c", "d"]


def test_not_modified_is_an_answer_and_headers_ignore_case(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(304, {"ETag": '"v1"'}, b"")]
    r = client([]).get(f"{base}/feed", headers={"If-None-Match": '"v1"'})
    assert r.status == 304 and r.headers.get("etag") == '"v1"' and "ETAG" in r.headers
    assert script.headers[0]["If-None-Match"] == '"v1"'


def test_stop_ends_a_long_retry_after_wait_at_once(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(429, {"Retry-After": "3600"}, b"")]
    stop = threading.Event()
    stop.set()
    c = HttpClient("test", requests_per_minute=1e12, stop=stop)
    with pytest.raises(SourceUnavailable, match="stopping"):
        c.get(f"{base}/")


def test_deferred_checkpoints_are_written_only_for_saves_made_before_a_flush(tmp_path: Path) -> None:
    from connectors.checkpoint import DeferredCheckpoints

    store = CheckpointStore(tmp_path)
    deferred = DeferredCheckpoints(store)
    deferred.save("a", {"cursor": 1})
    assert deferred.load("a") == {"cursor": 1} and store.load("a") == {}
    snapshot = deferred.pending()
    deferred.save("a", {"cursor": 2})  # saved while the flush runs: not covered by it
    deferred.commit(snapshot)
    assert store.load("a") == {"cursor": 1} and deferred.load("a") == {"cursor": 2}
    deferred.commit(deferred.pending())
    assert store.load("a") == {"cursor": 2} and deferred.pending() == {}


def test_oversized_rejects_are_cut_to_the_message_limit() -> None:
    from connectors.kafka import KafkaSettings
    from connectors.mention import MAX_MESSAGE_BYTES
    from connectors.publish import TRUNCATED_HEADER, MentionPublisher
    from connectors.source import Rejected

    sent: list[tuple[str, bytes, dict, bool]] = []

    class Recorder:
        def send(self, topic, value, key=None, headers=(), refusable=False):  # type: ignore[no-untyped-def]
            sent.append((topic, value, dict(headers), refusable))

    MentionPublisher(Recorder(), KafkaSettings()).reject(  # type: ignore[arg-type]
        Rejected(b"x" * (MAX_MESSAGE_BYTES * 3), "too_large", "huge", "test"))
    ((topic, value, headers, refusable),) = sent
    assert topic == "mentions.dlq" and len(value) == MAX_MESSAGE_BYTES
    assert headers[TRUNCATED_HEADER] == str(MAX_MESSAGE_BYTES * 3).encode() and refusable


@pytest.mark.parametrize("headers, expected", [
    ({"x-rate-limit-reset": "1795392060"}, 60.0),            # X: epoch seconds
    ({"X-Ratelimit-Reset": "42"}, 42.0),                     # Reddit: seconds until the reset
    ({"X-RateLimit-Reset": "2026-11-23T00:05:00.000Z"}, 300.0),  # Mastodon: an ISO-8601 time
])
def test_429_without_retry_after_waits_for_the_vendors_reset_header(
        server: tuple[str, Script], headers: dict[str, str], expected: float) -> None:
    base, script = server
    script.answers += [(429, headers, b""), (200, {}, b"{}")]
    sleeps: list[float] = []
    client(sleeps).get(f"{base}/")
    assert sleeps == [expected]


def test_unavailable_carries_status_and_body(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers += [(403, {}, b'{"detail": "rule refused"}')]
    with pytest.raises(SourceUnavailable) as info:
        client([]).get(f"{base}/")
    assert info.value.status == 403 and b"rule refused" in info.value.body


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
    ("[::1]", True), ("example.com", False), ("10.0.0.1", False), ("0.0.0.0", False), ("", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    """One definition for the webhook source, the HTTP notifiers and SMTP: plain text only on loopback."""
    assert is_loopback(host) is loopback
