"""The inbound webhook source, over real HTTP on 127.0.0.1 (port 0)."""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.checkpoint import CheckpointStore
from connectors.mention import Mention
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext
from connectors.webhook import WebhookSource, build

TOKEN = "test-token-0123456789abcdef"
WAIT = 5.0  # deadline for conditions, never a sleep

MENTION = {"id": "zd:1", "source": "zendesk", "brand": "acme", "text": "Acme support lost my ticket",
           "created_at": "2026-11-23T14:02:11Z", "author": "jane", "url": "https://support.example/t/1",
           "lang": "en", "reach": 120}
POST = {"id": "zap:9", "source": "zapier", "text": "Is anyone else seeing Acme outages?",
        "created_at": "2026-11-23T16:30:00+02:00", "url": "https://forum.example/p/9", "is_repost": True}


def mention(i: int, brand: str = "acme") -> dict[str, Any]:
    return {"id": f"t:{i}", "source": "tool", "brand": brand, "text": f"message {i}",
            "created_at": "2026-11-23T10:00:00Z"}


class Running:
    """A source whose items() runs in a thread, collecting what it yields."""

    def __init__(self, source: WebhookSource, stop: threading.Event) -> None:
        self.source = source
        self.stop = stop
        self.items: list[Any] = []
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.source.port}{self.source.path}"

    def consume(self) -> Running:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.source.ready.wait(WAIT)
        return self

    def _run(self) -> None:
        for item in self.source.items():
            with self.cond:
                self.items.append(item)
                self.cond.notify_all()

    def wait_items(self, n: int) -> list[Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, WAIT), self.items
            return list(self.items)

    def end(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(WAIT)
            assert not self.thread.is_alive()
        self.source.close()


def context(store: CheckpointStore | None = None, token: str = TOKEN) -> SourceContext:
    return SourceContext(stop=threading.Event(), checkpoints=store, env={"HOOK_TOKEN": token})


@pytest.fixture()
def hook() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def make(store: CheckpointStore | None = None, consume: bool = True, **table: Any) -> Running:
        ctx = context(store)
        source = build({"type": "webhook", "token_env": "HOOK_TOKEN", "port": 0, **table}, "sources[0]", ctx)
        source.poll_s = 0.02  # how often items() and the server look at the stop flag: keeps teardown quick
        run = Running(source, ctx.stop)
        started.append(run)
        if consume:
            run.consume()
        else:
            source.start()
        return run

    yield make
    for run in started:
        run.end()


def send(url: str, body: object, token: str | None = TOKEN, content_type: str = "application/json",
         method: str = "POST", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    hdrs = {"Content-Type": content_type, **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status, dict(resp.headers.items()), orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), orjson.loads(exc.read())


def test_one_object_becomes_a_mention(hook: Callable[..., Running]) -> None:
    run = hook()
    status, headers, body = send(run.url, MENTION)
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0, "rejected": []})
    assert headers["Content-Type"] == "application/json"
    [item] = run.wait_items(1)
    assert item == Mention(id="zd:1", source="zendesk", brand="acme", text="Acme support lost my ticket",
                           created_at=datetime(2026, 11, 23, 14, 2, 11, tzinfo=timezone.utc), author="jane",
                           url="https://support.example/t/1", lang="en", reach=120, is_repost=False)
    assert type(item) is Mention


def test_array_mixes_mention_post_and_rejected_objects(hook: Callable[..., Running]) -> None:
    run = hook()
    broken = {"id": "zd:2", "source": "zendesk", "brand": "acme", "text": "no time"}
    status, _, body = send(run.url, [MENTION, POST, broken, 42, {**POST, "id": "zap:10", "reach": -1}])
    assert status == 202
    assert body == {"accepted": 2, "duplicates": 0, "rejected": [
        {"index": 2, "reason": "missing_field", "detail": "created_at is required"},
        {"index": 3, "reason": "not_an_object", "detail": "message must be a JSON object, got int"},
        {"index": 4, "reason": "invalid_value", "detail": "reach must be >= 0, got -1"},
    ]}
    first, second, third, fourth, fifth = run.wait_items(5)
    assert type(first) is Mention and first.id == "zd:1" and first.brand == "acme"
    assert type(second) is Post
    assert second == Post(source="zapier", id="zap:9", text="Is anyone else seeing Acme outages?",
                          created_at=datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc), author=None,
                          url="https://forum.example/p/9", lang=None, reach=None, is_repost=True)
    assert second.created_at.tzinfo == timezone.utc
    assert third == Rejected(raw=orjson.dumps(broken), reason="missing_field", detail="created_at is required",
                             origin="webhook:127.0.0.1")
    assert fourth == Rejected(raw=b"42", reason="not_an_object",
                              detail="message must be a JSON object, got int", origin="webhook:127.0.0.1")
    assert isinstance(fifth, Rejected) and fifth.reason == "invalid_value"
    health = run.source.health()
    assert (health["accepted"], health["rejected"], health["items"]) == (2, 3, 5)


def test_brand_null_is_a_post_but_an_empty_brand_is_rejected(hook: Callable[..., Running]) -> None:
    run = hook()
    status, _, body = send(run.url, [{**POST, "brand": None}, {**POST, "id": "zap:11", "brand": " "}])
    assert status == 202 and body["accepted"] == 1
    assert body["rejected"] == [{"index": 1, "reason": "invalid_value", "detail": "brand must not be empty"}]
    post, rejected = run.wait_items(2)
    assert type(post) is Post and post.id == "zap:9"
    assert isinstance(rejected, Rejected) and rejected.reason == "invalid_value"


def test_missing_or_wrong_token_is_401_and_nothing_is_accepted(hook: Callable[..., Running]) -> None:
    run = hook()
    for token, hdrs in [(None, {}), ("wrong-token-0123456789abcdef", {}), (TOKEN + "x", {}), (TOKEN[:-1], {}),
                        (None, {"Authorization": f"Basic {TOKEN}"}), (None, {"Authorization": TOKEN})]:
        status, headers, body = send(run.url, [MENTION, POST], token=token, headers=hdrs)
        assert status == 401, (token, hdrs)
        assert body == {"error": "unauthorized", "detail": "missing or wrong bearer token"}
        assert headers["WWW-Authenticate"].startswith('Bearer realm="crisiswatch"')
        assert TOKEN not in orjson.dumps(body).decode()
    assert ('error="invalid_token"' in send(run.url, MENTION, token="nope-nope-nope-nope")[1]["WWW-Authenticate"])
    assert 'error=' not in send(run.url, MENTION, token=None)[1]["WWW-Authenticate"]
    # scheme is case-insensitive (RFC 6750 / RFC 9110)
    assert send(run.url, mention(1), token=None, headers={"Authorization": f"bearer {TOKEN}"})[0] == 202
    assert run.wait_items(1) == [Mention("t:1", "tool", "acme", "message 1",
                                         datetime(2026, 11, 23, 10, tzinfo=timezone.utc))]
    health = run.source.health()
    assert (health["unauthorized"], health["accepted"], health["items"]) == (8, 1, 1)
    assert TOKEN not in orjson.dumps(health).decode()


@pytest.mark.parametrize("body, content_type, extra, status, error", [
    (b"x" * 2000, "application/json", {}, 413, "too_large"),
    (orjson.dumps([mention(i) for i in range(4)]), "application/json", {}, 413, "too_many_items"),
    (b'{"id": "1", "source": ', "application/json", {}, 400, "invalid_json"),
    (b"\xff\xfe{}", "application/json", {}, 400, "invalid_json"),
    (b'"just a string"', "application/json", {}, 400, "not_an_object"),
    (b"", "application/json", {}, 400, "invalid_json"),
    (orjson.dumps(MENTION), "text/plain", {}, 415, "unsupported_media_type"),
    (orjson.dumps(MENTION), "application/x-www-form-urlencoded", {}, 415, "unsupported_media_type"),
    (orjson.dumps(MENTION), "application/json", {"Content-Encoding": "gzip"}, 415, "unsupported_media_type"),
])
def test_refused_requests_accept_nothing(hook: Callable[..., Running], body: bytes, content_type: str,
                                         extra: dict[str, str], status: int, error: str) -> None:
    run = hook(max_body_bytes=1024, max_items=3)
    got, _, answer = send(run.url, body, content_type=content_type, headers=extra)
    assert (got, answer["error"]) == (status, error)
    # the next good request is the first thing yielded: nothing of the refused one got through
    assert send(run.url, mention(1), content_type="application/json; charset=utf-8")[0] == 202
    assert run.wait_items(1) == [Mention("t:1", "tool", "acme", "message 1",
                                         datetime(2026, 11, 23, 10, tzinfo=timezone.utc))]
    assert run.source.health()["errors"] == 1
    assert run.source.health()["last_error"].startswith(f"{status} to 127.0.0.1: ")


def test_methods_and_paths(hook: Callable[..., Running]) -> None:
    run = hook()
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, body = send(run.url, None, method=method)
        assert (status, headers["Allow"], body["error"]) == (405, "POST", "method_not_allowed"), method
    status, headers, _ = send(run.url + "/health", MENTION)
    assert (status, headers["Allow"]) == (405, "GET")
    assert send(run.url.replace("/mentions", "/other"), MENTION)[0] == 404
    assert send(run.url + "?via=zap", mention(1))[0] == 202  # the query string does not change the route
    assert len(run.wait_items(1)) == 1


def test_health_needs_no_token_and_shows_no_secret(hook: Callable[..., Running]) -> None:
    run = hook()
    send(run.url, [MENTION, {"id": "x"}])
    send(run.url, MENTION, token="bad-bad-bad-bad-bad")
    run.wait_items(2)
    status, _, health = send(run.url + "/health", None, token=None, method="GET")
    assert status == 200
    assert {"polls", "items", "errors", "last_error", "last_success", "cursor"} <= set(health)
    assert (health["polls"], health["items"], health["errors"], health["cursor"]) == (2, 2, 1, None)
    assert health["last_error"] == "401 to 127.0.0.1: missing or wrong bearer token"
    assert datetime.fromisoformat(health["last_success"]).tzinfo is not None
    assert health["port"] == run.source.port and health["listening"] is True
    assert TOKEN not in orjson.dumps(health).decode()


def test_queue_full_is_503_with_retry_after_and_all_or_nothing(hook: Callable[..., Running]) -> None:
    run = hook(consume=False, queue_size=2, max_items=2)
    assert send(run.url, [mention(1)])[0] == 202
    status, headers, body = send(run.url, [mention(2), mention(3)])  # one slot left: neither is taken
    assert (status, headers["Retry-After"], body["error"]) == (503, "1", "busy")
    assert run.source.health()["queued"] == 1
    assert send(run.url, [mention(2)])[0] == 202
    status, headers, _ = send(run.url, [mention(3)])
    assert (status, headers["Retry-After"]) == (503, "1")
    assert run.source.health()["busy"] == 2
    run.consume()
    assert [m.id for m in run.wait_items(2)] == ["t:1", "t:2"]
    # a refused item was not remembered as delivered: the retry goes through
    assert send(run.url, [mention(2), mention(3)])[2] == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert [m.id for m in run.wait_items(3)] == ["t:1", "t:2", "t:3"]


def test_repeated_delivery_is_not_published_twice(hook: Callable[..., Running]) -> None:
    run = hook()
    assert send(run.url, [mention(1), POST])[2] == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert send(run.url, [mention(1), POST])[2] == {"accepted": 0, "duplicates": 2, "rejected": []}
    # the same post for another brand is another mention; a repeat inside one request is a duplicate
    body = send(run.url, [mention(1, brand="globex"), mention(2), mention(2)])[2]
    assert body == {"accepted": 2, "duplicates": 1, "rejected": []}
    items = run.wait_items(4)
    assert [(type(i).__name__, i.id, getattr(i, "brand", None)) for i in items] == [
        ("Mention", "t:1", "acme"), ("Post", "zap:9", None), ("Mention", "t:1", "globex"), ("Mention", "t:2", "acme")]
    # a sentinel proves nothing else was queued behind them
    send(run.url, mention(99))
    assert [i.id for i in run.wait_items(5)][4:] == ["t:99"]
    assert run.source.health()["duplicates"] == 3


def test_restart_remembers_delivered_ids(hook: Callable[..., Running], tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = hook(store=store)
    send(first.url, [mention(1), POST])
    first.wait_items(2)
    first.end()
    assert sorted(store.load("webhook")["seen"]) == ["tool\x1ft:1\x1facme", "zapier\x1fzap:9\x1f"]

    second = hook(store=store)
    assert send(second.url, [mention(1), POST, mention(2)])[2] == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert [i.id for i in second.wait_items(1)] == ["t:2"]
    send(second.url, mention(3))
    assert [i.id for i in second.wait_items(2)] == ["t:2", "t:3"]


def test_stop_ends_items_and_frees_the_port(hook: Callable[..., Running]) -> None:
    run = hook()
    port = run.source.port
    send(run.url, mention(1))
    run.wait_items(1)
    run.stop.set()
    assert run.thread is not None
    run.thread.join(WAIT)
    assert not run.thread.is_alive()
    assert not run.source.ready.is_set()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(run.url + "/health", timeout=WAIT)
    with socket.socket() as s:  # nobody listens there any more
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_items_accepted_before_stop_are_still_yielded(hook: Callable[..., Running]) -> None:
    run = hook(consume=False)
    send(run.url, [mention(1), mention(2)])
    run.stop.set()  # set before the consumer even starts: the 202-ed items must not vanish
    got = list(run.source.items())
    assert [i.id for i in got] == ["t:1", "t:2"]


def _raw_request(port: int, head: str) -> bytes:
    """Send only the head of a request and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(head.encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_expect_100_continue_refuses_before_the_body(hook: Callable[..., Running]) -> None:
    run = hook(max_body_bytes=1024)
    port = run.source.port
    big = ("POST /mentions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n")
    answer = _raw_request(port, big)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    unauth = big.replace(TOKEN, "wrong").replace("1000000000", "10")
    answer = _raw_request(port, unauth)
    assert answer.startswith(b"HTTP/1.1 401 ") and b"100 Continue" not in answer

    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        body = orjson.dumps(mention(1))
        s.sendall(big.replace("1000000000", str(len(body))).encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        assert s.recv(65536).startswith(b"HTTP/1.1 202 ")
    assert [i.id for i in run.wait_items(1)] == ["t:1"]


def test_keep_alive_connection_survives_a_refused_request(hook: Callable[..., Running]) -> None:
    run = hook()
    conn = http.client.HTTPConnection("127.0.0.1", run.source.port, timeout=WAIT)
    try:
        body = orjson.dumps([mention(1)])
        conn.request("POST", "/mentions", body, {"Content-Type": "application/json", "Authorization": "Bearer no"})
        resp = conn.getresponse()
        assert resp.status == 401 and orjson.loads(resp.read())["error"] == "unauthorized"
        assert resp.getheader("Connection") is None  # the refused body was read: the connection stays usable
        sock = conn.sock
        conn.request("POST", "/mentions", body,
                     {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 202 and orjson.loads(resp.read())["accepted"] == 1
        assert conn.sock is sock
        conn.request("POST", "/mentions", b"[", {"Content-Type": "application/json",
                                                 "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 400 and resp.getheader("Connection") is None
        resp.read()
    finally:
        conn.close()
    assert [i.id for i in run.wait_items(1)] == ["t:1"]


def test_build_defaults() -> None:
    source = build({"type": "webhook", "token_env": "HOOK_TOKEN"}, "sources[0]", context())
    assert (source.name, source.host, source.port, source.path, source.health_path) == (
        "webhook", "127.0.0.1", 8787, "/mentions", "/mentions/health")
    assert (source.max_items, source.max_body_bytes, source._queue.maxsize) == (1000, 5 * 1024 * 1024, 10_000)
    assert source.store is None and not source.ready.is_set()  # nothing listens until items() runs
    named = build({"type": "webhook", "name": "zapier", "token_env": "HOOK_TOKEN", "path": "/in/"}, "s", context())
    assert (named.name, named.path, named.health_path) == ("zapier", "/in", "/in/health")


@pytest.mark.parametrize("table, env_token, key", [
    ({}, TOKEN, "token_env"),
    ({"token_env": "NOT_SET"}, TOKEN, "token_env"),
    ({"token_env": "HOOK_TOKEN"}, "abc123", "token_env"),
    ({"token_env": "HOOK_TOKEN", "port": "8787"}, TOKEN, "port"),
    ({"token_env": "HOOK_TOKEN", "port": 70000}, TOKEN, "port"),
    ({"token_env": "HOOK_TOKEN", "path": "mentions"}, TOKEN, "path"),
    ({"token_env": "HOOK_TOKEN", "host": ""}, TOKEN, "host"),
    ({"token_env": "HOOK_TOKEN", "max_items": 0}, TOKEN, "max_items"),
    ({"token_env": "HOOK_TOKEN", "max_body_bytes": True}, TOKEN, "max_body_bytes"),
    ({"token_env": "HOOK_TOKEN", "queue_size": 10}, TOKEN, "max_items"),
    ({"token_env": "HOOK_TOKEN", "dedup_ids": -1}, TOKEN, "dedup_ids"),
    ({"token_env": "HOOK_TOKEN", "token": TOKEN}, TOKEN, "token"),
    ({"token_env": "HOOK_TOKEN", "name": 3}, TOKEN, "name"),
])
def test_config_errors_name_the_key(table: dict[str, Any], env_token: str, key: str) -> None:
    with pytest.raises(SourceConfigError) as err:
        build({"type": "webhook", **table}, "sources[2]", context(token=env_token))
    assert f"sources[2].{key}" in str(err.value)
    assert env_token not in str(err.value)


def test_port_in_use_is_reported_with_the_fix(hook: Callable[..., Running]) -> None:
    run = hook()
    clash = build({"type": "webhook", "token_env": "HOOK_TOKEN", "port": run.source.port}, "s", context())
    with pytest.raises(SourceConfigError, match="change port or host"):
        clash.start()
