"""The X filtered-stream source against a local fake of the X API v2 (rules + stream)."""

from __future__ import annotations

import logging
import queue
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.checkpoint import CheckpointStore
from connectors.http import HttpClient
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext
from connectors.x import Backoff, XStream, build

FIXTURES = Path(__file__).parent / "fixtures" / "x"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAsecret%2Ftoken%3Dxyz"
WALL = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc).timestamp()
RULES = "/2/tweets/search/stream/rules"
STREAM = "/2/tweets/search/stream"


def recorded() -> list[bytes]:
    return [line.encode() for line in (FIXTURES / "stream_two_tweets.jsonl").read_text().splitlines()]


def tweet(tweet_id: str, text: str = "acme is down", created_at: str | None = "2026-11-23T14:10:00.000Z",
          username: str = "carol", followers: int = 42, **data: Any) -> bytes:
    body: dict[str, Any] = {"id": tweet_id, "text": text, "author_id": f"u{tweet_id}", "lang": "en",
                            "edit_history_tweet_ids": [tweet_id], **data}
    if created_at is not None:
        body["created_at"] = created_at
    if text is None:
        del body["text"]
    users = [{"id": f"u{tweet_id}", "name": username.title(), "username": username,
              "public_metrics": {"followers_count": followers, "following_count": 1, "tweet_count": 1,
                                 "listed_count": 0}}]
    return orjson.dumps({"data": body, "includes": {"users": users},
                         "matching_rules": [{"id": "1860330000000000101", "tag": "crisiswatch:x"}]})


# -- the fake X API --------------------------------------------------------------------------

Script = Callable[["Handler"], None]


class FakeX:
    def __init__(self) -> None:
        self.rules: dict[str, dict[str, str]] = {}
        self.next_rule_id = 1860330000000000500
        self.page_size = 2
        self.rule_requests: list[str] = []
        self.rule_posts: list[dict[str, Any]] = []
        self.rules_status: int | None = None
        self.stream_paths: list[str] = []
        self.connections: list[Script] = []
        self.auth: list[str | None] = []
        self.connected = threading.Event()
        self.arrivals = threading.Condition()
        self.release = threading.Event()
        self.echo_token = False
        self.lock = threading.Lock()

    def add_rule(self, value: str, tag: str) -> str:
        rule_id = str(self.next_rule_id)
        self.next_rule_id += 1
        self.rules[rule_id] = {"id": rule_id, "value": value, "tag": tag}
        return rule_id


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeX

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.fake.auth.append(self.headers.get("Authorization"))
        path = urllib.parse.urlsplit(self.path)
        if path.path == RULES:
            self.rules_page(urllib.parse.parse_qs(path.query))
        elif path.path == STREAM:
            with self.fake.lock:
                self.fake.stream_paths.append(self.path)
                script = self.fake.connections.pop(0) if self.fake.connections else hold([])
            self.fake.connected.set()
            with self.fake.arrivals:
                self.fake.arrivals.notify_all()
            script(self)
        else:
            self.answer(404, {"title": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        self.fake.auth.append(self.headers.get("Authorization"))
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["Content-Type"] == "application/json"
        self.fake.rule_posts.append(body)
        now = "2026-11-23T14:00:00.000Z"
        if "delete" in body:
            ids = body["delete"]["ids"]
            deleted = [i for i in ids if self.fake.rules.pop(i, None)]
            self.answer(200, {"meta": {"sent": now, "summary": {"deleted": len(deleted),
                                                                  "not_deleted": len(ids) - len(deleted)}}})
            return
        created, errors = [], []
        for rule in body["add"]:
            existing = [r for r in self.fake.rules.values() if r["value"] == rule["value"]]
            if "((" in rule["value"]:
                errors.append({"value": rule["value"], "details": ["Rules must contain balanced parentheses"],
                               "title": "UnprocessableEntity",
                               "type": "https://api.twitter.com/2/problems/invalid-rules"})
            elif existing:
                errors.append({"value": rule["value"], "id": existing[0]["id"], "title": "DuplicateRule",
                               "type": "https://api.twitter.com/2/problems/duplicate-rules"})
            else:
                created.append(self.fake.rules[self.fake.add_rule(rule["value"], rule["tag"])])
        answer: dict[str, Any] = {"meta": {"sent": now, "summary": {
            "created": len(created), "not_created": len(errors),
            "valid": len(body["add"]) - sum(e["title"] == "UnprocessableEntity" for e in errors),
            "invalid": sum(e["title"] == "UnprocessableEntity" for e in errors)}}}
        if created:
            answer["data"] = created
        if errors:
            answer["errors"] = errors
        self.answer(200, answer)

    def rules_page(self, query: dict[str, list[str]]) -> None:
        self.fake.rule_requests.append(self.path)
        if self.fake.rules_status:
            detail = f"Unauthorized: {self.headers.get('Authorization')}" if self.fake.echo_token else "no"
            self.answer(self.fake.rules_status, {"title": "Unauthorized", "detail": detail, "status": 401})
            return
        rules = sorted(self.fake.rules.values(), key=lambda r: r["id"])
        start = int(query.get("pagination_token", ["0"])[0])
        page = rules[start:start + self.fake.page_size]
        meta: dict[str, Any] = {"sent": "2026-11-23T14:00:00.000Z", "result_count": len(page)}
        if start + self.fake.page_size < len(rules):
            meta["next_token"] = str(start + self.fake.page_size)
        self.answer(200, {"data": page, "meta": meta} if page else {"meta": meta})

    def answer(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        body = orjson.dumps(obj)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def status(code: int, obj: object, headers: dict[str, str] | None = None) -> Script:
    def run(h: Handler) -> None:
        h.close_connection = True
        h.answer(code, obj, headers)
    return run


def lines(parts: list[bytes], end: str = "close") -> Script:
    """200 and chunked stream data; ``end`` = close (clean), drop (cut mid-chunk), hold (stay silent)."""
    def run(h: Handler) -> None:
        h.start_stream()
        for part in parts:
            h.chunk(part)
        if end == "close":
            h.wfile.write(b"0\r\n\r\n")
        elif end == "drop":
            h.wfile.write(b"40\r\n" + b'{"data":{"id":"1860334199')  # promises 64 bytes, sends 25
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        else:
            h.fake.release.wait(10)
    return run


def hold(parts: list[bytes]) -> Script:
    return lines(parts, end="hold")


def crlf(*objs: bytes) -> list[bytes]:
    return [o + b"\r\n" for o in objs]


@pytest.fixture()
def fake() -> Iterator[tuple[str, FakeX]]:
    state = FakeX()
    handler = type("BoundHandler", (Handler,), {"fake": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def source(base: str, tmp_path: Path, rules: list[str] | None = None, sleeps: list[float] | None = None,
           **kw: Any) -> XStream:
    http = HttpClient("x-test", requests_per_minute=1e12, max_retries=0, sleep=lambda s: None)
    return XStream(rules or ["acme"], TOKEN, CheckpointStore(tmp_path / "cp"), base_url=base, http=http,
                   sleep=(sleeps if sleeps is not None else []).append, connects_per_minute=1e12,
                   wall=lambda: WALL, **kw)


class Runner:
    """Consumes ``items()`` in a thread so every wait in the test has a deadline."""

    def __init__(self, src: XStream) -> None:
        self.src = src
        self.queue: queue.Queue[object] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.src.items():
                self.queue.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.queue.put(exc)

    def take(self, n: int, timeout: float = 5.0) -> list[object]:
        out = []
        for _ in range(n):
            item = self.queue.get(timeout=timeout)
            if isinstance(item, BaseException):
                raise item
            out.append(item)
        return out

    def stop(self) -> None:
        self.src.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "items() did not return after stop"
        assert self.queue.empty(), f"unexpected extra items: {list(self.queue.queue)}"


# -- rules ------------------------------------------------------------------------------------


def test_rule_sync_adds_missing_and_deletes_only_its_own_stale_rules(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    keep = x.add_rule("acme outage", "crisiswatch:x")
    stale = x.add_rule("old campaign", "crisiswatch:x")
    foreign = x.add_rule("foo", "another-app")
    other_source = x.add_rule("bar", "crisiswatch:eu")
    src = source(base, tmp_path, rules=["acme outage", "acme recall", "acme lang:en"])
    src.sync_rules()
    assert x.rule_requests == [RULES, f"{RULES}?pagination_token=2"]  # two pages of two
    assert x.rule_posts == [
        {"delete": {"ids": [stale]}},
        {"add": [{"value": "acme recall", "tag": "crisiswatch:x"}, {"value": "acme lang:en", "tag": "crisiswatch:x"}]},
    ]
    assert {(r["value"], r["tag"]) for r in x.rules.values()} == {
        ("acme outage", "crisiswatch:x"), ("acme recall", "crisiswatch:x"), ("acme lang:en", "crisiswatch:x"),
        ("foo", "another-app"), ("bar", "crisiswatch:eu")}
    assert keep in x.rules and foreign in x.rules and other_source in x.rules
    assert set(x.auth) == {f"Bearer {TOKEN}"}
    assert src.health()["errors"] == 0 and src.rules_synced

    # already in sync: a new instance only lists the rules
    x.rule_posts.clear()
    source(base, tmp_path, rules=["acme lang:en", "acme outage", "acme recall"]).sync_rules()
    assert x.rule_posts == []


def test_refused_rule_is_reported_and_duplicate_of_a_foreign_rule_is_fine(fake: tuple[str, FakeX],
                                                                          tmp_path: Path) -> None:
    base, x = fake
    x.add_rule("foo", "another-app")
    src = source(base, tmp_path, rules=["foo", "acme ((oops"])
    src.sync_rules()
    assert x.rule_posts == [{"add": [{"value": "foo", "tag": "crisiswatch:x"},
                                     {"value": "acme ((oops", "tag": "crisiswatch:x"}]}]
    health = src.health()
    assert health["errors"] == 1
    assert health["last_error"] == ("rule 'acme ((oops' refused: UnprocessableEntity: "
                                    "Rules must contain balanced parentheses")


# -- the stream -------------------------------------------------------------------------------


def test_stream_with_keepalives_two_tweets_and_an_error_object(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    first, error, second = recorded()
    # the first post arrives split over two chunks, keep-alives around everything
    x.connections.append(lines([b"\r\n", first[:57], first[57:] + b"\r\n", b"\r\n", error + b"\r\n",
                                second + b"\r\n", b"\r\n"]))
    sleeps: list[float] = []
    src = source(base, tmp_path, sleeps=sleeps)
    run = Runner(src)
    a, b = run.take(2)
    assert a == Post(
        source="x", id="x:1860334112000000001",
        text="@AcmeAir 3 hours on the tarmac & still no word. Worst airline ever >:(",
        created_at=datetime(2026, 11, 23, 14, 2, 11, tzinfo=timezone.utc), author="@dana_k",
        url="https://x.com/dana_k/status/1860334112000000001", lang="en", reach=1234, is_repost=False)
    assert b == Post(
        source="x", id="x:1860334129000000002",
        text="RT @AcmeAir: We are aware of delays at JFK and are working to get everyone moving.",
        created_at=datetime(2026, 11, 23, 14, 2, 15, tzinfo=timezone.utc), author="@bob_the_traveller",
        url="https://x.com/bob_the_traveller/status/1860334129000000002", lang=None, reach=0, is_repost=True)
    assert a.created_at.utcoffset().total_seconds() == 0
    with x.arrivals:  # the server closed cleanly: reconnected at once, without a wait
        assert x.arrivals.wait_for(lambda: len(x.stream_paths) >= 2, timeout=5)
    run.stop()
    assert sleeps == []
    path = urllib.parse.urlsplit(x.stream_paths[0])
    assert path.path == STREAM
    assert urllib.parse.parse_qs(path.query) == {
        "tweet.fields": ["created_at,author_id,lang,public_metrics,referenced_tweets,note_tweet"],
        "expansions": ["author_id"], "user.fields": ["username,public_metrics"]}
    assert len(x.stream_paths) == 2
    health = src.health()
    assert health["items"] == 2 and health["errors"] == 1 and health["polls"] == 2
    assert health["last_error"] == ("stream error: operational-disconnect: UpstreamOperationalDisconnect: "
                                    "This stream has been disconnected upstream for operational reasons.")
    assert health["cursor"] == "1860334129000000002"
    assert health["last_success"] == "2026-11-23T15:00:00Z"
    assert x.rule_posts == [{"add": [{"value": "acme", "tag": "crisiswatch:x"}]}]  # synced before connecting


def test_malformed_lines_are_rejected_and_the_stream_goes_on(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    long_text = "Acme " * 100
    bad = [b"{not json", b"[1, 2]", tweet("11", created_at=None), tweet("12", created_at="yesterday"),
           tweet("13", text=None), orjson.dumps({"data": {"id": 14, "text": "x", "created_at": "2026-11-23T14:00:00Z"}}),
           orjson.dumps({"matching_rules": []})]
    good = orjson.dumps({"data": {"id": "15", "text": "Acme Acme Acme…", "created_at": "2026-11-23T14:11:00.000Z",
                                  "author_id": "999", "note_tweet": {"text": long_text}}})
    x.connections.append(lines(crlf(*bad, good)))
    run = Runner(source(base, tmp_path))
    items = run.take(len(bad) + 1)
    run.stop()
    rejected = items[:-1]
    assert all(isinstance(r, Rejected) for r in rejected)
    assert [r.reason for r in rejected] == ["invalid_json", "not_an_object", "missing_field", "bad_timestamp",
                                            "missing_field", "wrong_type", "missing_field"]
    assert [r.raw for r in rejected] == bad
    assert "created_at" in rejected[2].detail and "11" in rejected[2].detail
    assert "text" in rejected[4].detail
    assert all(r.origin == "x:x:stream" for r in rejected)
    # a long post: note_tweet's full text; no expanded author: no handle, a generic link
    assert items[-1] == Post(source="x", id="x:15", text=long_text,
                             created_at=datetime(2026, 11, 23, 14, 11, tzinfo=timezone.utc), author=None,
                             url="https://x.com/i/web/status/15", lang=None, reach=None, is_repost=False)


def test_dropped_connection_reconnects_with_backfill_and_drops_redelivered_posts(
        fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    t1, t2, t3 = tweet("21", username="ann"), tweet("22", username="ben"), tweet("23", username="cy")
    x.connections += [lines(crlf(t1), end="drop"), lines(crlf(t1, t2, t3))]  # backfill re-sends t1
    sleeps: list[float] = []
    src = source(base, tmp_path, sleeps=sleeps, backfill_minutes=2)
    run = Runner(src)
    posts = run.take(3)
    run.stop()
    assert [p.id for p in posts] == ["x:21", "x:22", "x:23"]
    assert [p.author for p in posts] == ["@ann", "@ben", "@cy"]
    assert sleeps == []  # an established connection that drops is retried at once
    assert len(x.stream_paths) >= 2
    for path in x.stream_paths:
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["backfill_minutes"] == ["2"]
    assert src.health()["items"] == 3


def test_a_silent_connection_is_dead_after_the_read_timeout(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    x.connections += [hold(crlf(tweet("31"))), lines(crlf(tweet("32")))]
    run = Runner(source(base, tmp_path, read_timeout_s=0.3))
    posts = run.take(2)
    run.stop()
    assert [p.id for p in posts] == ["x:31", "x:32"]


def test_429_waits_for_the_reset_then_http_errors_back_off_exponentially(
        fake: tuple[str, FakeX], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base, x = fake
    too_many = {"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed "
                "connection limit.", "connection_issue": "TooManyConnections",
                "type": "https://api.twitter.com/2/problems/streaming-connection"}
    reset = {"x-rate-limit-limit": "50", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(WALL) + 90)}
    x.connections += [status(429, too_many, reset), status(429, too_many), status(503, {"title": "Service Unavailable"}),
                      status(503, {"title": "Service Unavailable"}), lines(crlf(tweet("41")))]
    sleeps: list[float] = []
    src = source(base, tmp_path, sleeps=sleeps)
    with caplog.at_level(logging.WARNING, logger="connectors.x"):
        run = Runner(src)
        (post,) = run.take(1)
        run.stop()
    assert post.id == "x:41"
    # 429: at least 60 s, here until the reset 90 s away; then 120 s; HTTP errors 5 s, 10 s; connected: counters reset
    assert sleeps == [90.0, 120.0, 5.0, 10.0]
    health = src.health()
    assert health["errors"] == 4 and health["items"] == 1
    assert "stream: HTTP 429: ConnectionException: TooManyConnections: This stream is currently at the maximum" \
        in caplog.text
    assert health["last_error"] == "stream: HTTP 503: Service Unavailable"


def test_network_errors_back_off_linearly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    src = source(f"http://127.0.0.1:{port}", tmp_path, sleeps=sleeps)

    def record(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 4:
            src.stop.set()

    src.sleep = record
    assert list(src.items()) == []
    assert sleeps == [0.25, 0.5, 0.75, 1.0]
    assert src.health()["polls"] == 4 and not src.rules_synced


def test_backoff_schedules_and_caps() -> None:
    b = Backoff()
    assert [b.network_error() for _ in range(70)][-3:] == [16.0, 16.0, 16.0]
    assert [b.http_error() for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 320]
    assert [b.rate_limited(None) for _ in range(6)] == [60, 120, 240, 480, 960, 960]
    b.connected()
    assert b.network_error() == 0.25 and b.http_error() == 5 and b.rate_limited(700.0) == 700.0


def test_stop_ends_a_blocked_read_at_once(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    x.connections.append(hold([b"\r\n"]))
    src = source(base, tmp_path)  # default 30 s read timeout: only the stop watcher can end the read soon
    run = Runner(src)
    assert x.connected.wait(5)
    run.stop()
    assert src.health()["connected"] is False


def test_a_restart_yields_no_duplicates(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    t1, t2, t3 = tweet("51"), tweet("52"), tweet("53")
    x.connections.append(hold(crlf(t1, t2)))
    first = source(base, tmp_path, backfill_minutes=5)
    run = Runner(first)
    assert [p.id for p in run.take(2)] == ["x:51", "x:52"]
    run.stop()  # the process ends; the checkpoint is saved on the way out
    saved = CheckpointStore(tmp_path / "cp").load("x")
    assert saved == {"seen": ["x:51", "x:52"], "cursor": "52"}

    x.connections.append(hold(crlf(t2, t3)))  # the new process's backfill re-delivers t2
    second = source(base, tmp_path, backfill_minutes=5)
    assert second.health()["cursor"] == "52"
    run = Runner(second)
    assert [p.id for p in run.take(1)] == ["x:53"]
    run.stop()
    assert second.health()["cursor"] == "53"


def test_poll_once_reads_one_connection(fake: tuple[str, FakeX], tmp_path: Path) -> None:
    base, x = fake
    x.connections.append(lines(crlf(tweet("61"), b"")))
    src = source(base, tmp_path)
    assert [i.id for i in src.poll_once() if isinstance(i, Post)] == ["x:61"]
    assert src.next_delay == 0.0 and src.health()["polls"] == 1


def test_the_bearer_token_never_appears_in_logs_errors_or_health(
        fake: tuple[str, FakeX], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base, x = fake
    x.rules_status, x.echo_token = 401, True
    echo = f"Unauthorized: Bearer {TOKEN}"
    x.connections += [
        status(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                     "detail": f"{echo} (token {TOKEN} unknown)"}),
        lines(crlf(orjson.dumps({"errors": [{"title": "ConnectionException", "detail": echo}]}),
                   orjson.dumps({"errors": [{"title": "Forbidden", "detail": f"token {TOKEN} was revoked"}]}),
                   orjson.dumps({"data": {"id": "71", "text": "t", "created_at": f"bad {TOKEN}"}}),
                   tweet("72"))),
    ]
    sleeps: list[float] = []
    src = source(base, tmp_path, sleeps=sleeps)
    with caplog.at_level(logging.DEBUG):
        run = Runner(src)
        rejected, post = run.take(2)
        run.stop()
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_timestamp"
    assert isinstance(post, Post) and post.id == "x:72"
    assert sleeps == [5.0]  # a 401 is retried slowly, like other HTTP errors
    assert x.auth and all(a == f"Bearer {TOKEN}" for a in x.auth)  # the token was sent...
    health = src.health()
    assert health["errors"] >= 3
    seen = [caplog.text, str(health), rejected.detail, rejected.raw.decode()] + [
        r.getMessage() for r in caplog.records]
    for text in seen:  # ...and is nowhere else
        assert TOKEN not in text
        assert "secret%2Ftoken" not in text
    assert "Unauthorized: Bearer [redacted]" in caplog.text


# -- the builder ------------------------------------------------------------------------------


def ctx(tmp_path: Path, checkpoints: bool = True) -> SourceContext:
    return SourceContext(checkpoints=CheckpointStore(tmp_path) if checkpoints else None,
                         env={"X_BEARER_TOKEN": TOKEN})


def test_build_with_defaults_and_options(tmp_path: Path) -> None:
    src = build({"type": "x", "rules": ["acme -is:retweet", "acme "], "bearer_token_env": "X_BEARER_TOKEN"},
                "sources[0]", ctx(tmp_path))
    assert (src.name, src.tag, src.base_url, src.backfill_minutes) == ("x", "crisiswatch:x", "https://api.x.com", None)
    assert src.rules == ["acme -is:retweet", "acme"]
    assert src.read_timeout_s == 30.0
    src = build({"type": "x", "name": "x-eu", "rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN",
                 "base_url": "http://127.0.0.1:9/", "backfill_minutes": 5}, "sources[1]", ctx(tmp_path))
    assert (src.name, src.tag, src.base_url, src.backfill_minutes) == ("x-eu", "crisiswatch:x-eu",
                                                                      "http://127.0.0.1:9", 5)
    assert TOKEN not in str(src.health())


@pytest.mark.parametrize(("table", "needle"), [
    ({"bearer_token_env": "X_BEARER_TOKEN"}, "sources[0].rules is required"),
    ({"rules": "acme", "bearer_token_env": "X_BEARER_TOKEN"}, "sources[0].rules"),
    ({"rules": [], "bearer_token_env": "X_BEARER_TOKEN"}, "sources[0].rules must list at least one rule"),
    ({"rules": ["acme", " "], "bearer_token_env": "X_BEARER_TOKEN"}, "sources[0].rules[1]"),
    ({"rules": ["a" * 2049], "bearer_token_env": "X_BEARER_TOKEN"}, "sources[0].rules[0]"),
    ({"rules": ["acme"]}, "sources[0].bearer_token_env is required"),
    ({"rules": ["acme"], "bearer_token_env": "X_MISSING"}, "environment variable X_MISSING is not set"),
    ({"rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN", "backfill_minutes": 6}, "sources[0].backfill_minutes"),
    ({"rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN", "backfill_minutes": True}, "backfill_minutes"),
    ({"rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN", "base_url": "api.x.com"}, "sources[0].base_url"),
    ({"rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN", "track": ["acme"]}, "sources[0].track"),
])
def test_build_config_errors_name_the_key(tmp_path: Path, table: dict[str, Any], needle: str) -> None:
    with pytest.raises(SourceConfigError) as info:
        build({"type": "x", **table}, "sources[0]", ctx(tmp_path))
    assert needle in str(info.value)
    assert TOKEN not in str(info.value)


def test_build_needs_a_checkpoint_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        build({"type": "x", "rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN"}, "sources[0]",
              ctx(tmp_path, checkpoints=False))


def test_a_built_source_waits_on_the_stop_event(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = ctx(tmp_path)
    src = build({"type": "x", "rules": ["acme"], "bearer_token_env": "X_BEARER_TOKEN",
                 "base_url": f"http://127.0.0.1:{port}"}, "sources[0]", context)
    assert src.stop is context.stop and src.http.stop is context.stop
    done = threading.Event()
    out: list[object] = []

    def run() -> None:
        out.extend(src.items())
        done.set()

    threading.Thread(target=run, daemon=True).start()
    # nothing listens: the source backs off (0.25 s, 0.5 s, ...) on the stop event, so setting it ends items()
    context.stop.set()
    assert done.wait(5) and out == []
