"""The Mastodon source against a local fake server that speaks the documented API.

The fake keeps real timelines (statuses with snowflake ids) and answers
``min_id`` / ``since_id`` / ``max_id`` / ``limit`` the way Mastodon does, with
``Link`` headers, ``X-RateLimit-*`` headers, scripted failures and a chunked
server-sent-events stream with heartbeats and dropped connections.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.checkpoint import CheckpointStore
from connectors.http import HttpClient
from connectors.mastodon import (
    PUBLIC,
    MastodonSource,
    build,
    hashtag_timeline,
    html_to_text,
    parse_link_header,
    sse_events,
)
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "mastodon" / "status.json").read_text("utf-8"))
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
WALL = T0.timestamp() + 3600
TAG = "/api/v1/timelines/tag/acme"
STREAM = "/api/v1/streaming/hashtag"
TOKEN = "s3cret-token-value"


def snowflake(moment: datetime, seq: int = 0) -> str:
    return str((int(moment.timestamp() * 1000) << 16) | seq)


def make_status(n: int, text: str | None = None, at: datetime | None = None, **over: Any) -> dict[str, Any]:
    """A status in the documented shape (the recorded fixture), numbered n, posted at T0 + 10 n s."""
    at = at or T0 + timedelta(seconds=10 * n)
    status = copy.deepcopy(FIXTURE)
    status["id"] = snowflake(at, n)
    status["created_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    status["uri"] = f"https://chaos.example/users/kim/statuses/{n}"
    status["url"] = f"https://chaos.example/@kim/{n}"
    if text is not None:
        status["content"] = f"<p>{text}</p>"
    status.update(over)
    return status


def pid(status: dict[str, Any]) -> str:
    return "mastodon:" + status["uri"]


class FakeMastodon:
    def __init__(self) -> None:
        self.base = ""
        self.timelines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.forced: dict[str, list[tuple[int, dict[str, str], bytes]]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.raw_queries: list[str] = []
        self.link_base: str | None = None
        self.rest_done = 0
        self.remaining = 299
        self.streams: list[list[tuple[Any, ...]]] = []
        self.stream_requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def add(self, path: str, *statuses: dict[str, Any]) -> None:
        with self.lock:
            self.timelines[path].extend(statuses)

    def page(self, path: str, query: dict[str, list[str]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Mastodon's paging: newest first; ``min_id`` = the ``limit`` statuses immediately newer."""
        def arg(name: str) -> int | None:
            return int(query[name][0]) if name in query else None
        limit = min(int(query.get("limit", ["20"])[0]), 40)
        min_id, since_id, max_id = arg("min_id"), arg("since_id"), arg("max_id")
        with self.lock:
            ordered = sorted(self.timelines[path], key=lambda s: int(s["id"]))
        window = [s for s in ordered if (max_id is None or int(s["id"]) < max_id)
                  and (since_id is None or int(s["id"]) > since_id)]
        if min_id is not None:
            chosen = [s for s in window if int(s["id"]) > min_id][:limit]
        else:
            chosen = window[-limit:]
        result = list(reversed(chosen))
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": datetime.fromtimestamp(WALL + 30, timezone.utc).isoformat()}
        if result:  # (min_id before limit: tells a followed link from a rebuilt query)
            url = f"{self.link_base or self.base}{path}"
            headers["Link"] = (f'<{url}?max_id={result[-1]["id"]}&limit={limit}>; rel="next", '
                               f'<{url}?min_id={result[0]["id"]}&limit={limit}>; rel="prev"')
        return result, headers

    def rest_queries(self, path: str = TAG) -> list[dict[str, list[str]]]:
        return [q for p, q, _ in self.requests if p == path]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                if parts.path.startswith("/api/v1/streaming/"):
                    self.stream()
                    return
                query = urllib.parse.parse_qs(parts.query)
                fake.requests.append((parts.path, query, dict(self.headers.items())))
                fake.raw_queries.append(parts.query)
                if fake.forced[parts.path]:
                    status, headers, body = fake.forced[parts.path].pop(0)
                elif parts.path in fake.timelines or parts.path == "/api/v1/timelines/public":
                    result, headers = fake.page(parts.path, query)
                    status, body = 200, orjson.dumps(result)
                else:
                    status, headers, body = 404, {}, b'{"error":"Record not found"}'
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with fake.lock:
                    fake.rest_done += 1

            def chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def stream(self) -> None:
                with fake.lock:
                    index = len(fake.stream_requests)
                    fake.stream_requests.append((self.path, dict(self.headers.items())))
                script = fake.streams[index] if index < len(fake.streams) else [("hold",)]
                if script[0][0] == "status":
                    self.send_response(script[0][1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for step in script:
                    if step[0] == "send":
                        self.chunk(step[1])
                    elif step[0] == "update":
                        fake.add(TAG, step[1])
                        self.chunk(b"event: update\ndata: " + orjson.dumps(step[1]) + b"\n\n")
                    elif step[0] == "add":
                        fake.add(TAG, step[1])
                    elif step[0] == "await_rest":
                        deadline = time.monotonic() + 5
                        while fake.rest_done < step[1] and time.monotonic() < deadline:
                            fake.release.wait(0.01)
                    elif step[0] == "drop":
                        self.close_connection = True
                        return
                    elif step[0] == "hold":
                        fake.release.wait(10)
                        self.close_connection = True
                        return

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture()
def fake() -> Iterator[FakeMastodon]:
    server = FakeMastodon()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield server
    server.release.set()
    httpd.shutdown()
    httpd.server_close()


def make_source(fake: FakeMastodon, tmp_path: Path, sleeps: list[float] | None = None,
                max_retries: int = 5, **kw: Any) -> MastodonSource:
    http = HttpClient("mastodon", requests_per_minute=1e12, max_retries=max_retries,
                      sleep=(sleeps if sleeps is not None else []).append, wall=lambda: WALL)
    kw.setdefault("timelines", [hashtag_timeline("acme")])
    kw.setdefault("lookback_s", 0)
    kw.setdefault("token", TOKEN)
    return MastodonSource(name="masto", instance=fake.base, store=CheckpointStore(tmp_path / "ckpt"), http=http, **kw)


# -- REST polling -----------------------------------------------------------------


def test_first_poll_reads_the_newest_page_and_maps_every_field(fake: FakeMastodon, tmp_path: Path) -> None:
    original = make_status(2, text="Boosting: <b>acme</b> lost my data")
    boost = make_status(3, uri="https://mastodon.example/users/bob/statuses/77/activity", url=None, content="",
                        language=None, reblog=original,
                        account={**FIXTURE["account"], "acct": "bob", "followers_count": 12})
    warned = make_status(4, text="acme layoffs", spoiler_text="work stuff", language="de")
    fake.add(TAG, make_status(1), boost, warned)
    src = make_source(fake, tmp_path)

    items = list(src.poll_once())

    assert all(isinstance(i, Post) for i in items)
    first, second, third = items
    assert first == Post(
        source="mastodon", id="mastodon:https://chaos.example/users/kim/statuses/1",
        text="My #acme order never arrived & support won't answer.\n"
             "Details: https://example.com/page/that/is/very/long\n\ncc @acme",
        created_at=datetime(2026, 11, 23, 14, 0, 10, tzinfo=timezone.utc), author="kim@chaos.example",
        url="https://chaos.example/@kim/1", lang="en", reach=2520, is_repost=False)
    assert second.id == "mastodon:https://mastodon.example/users/bob/statuses/77/activity"
    assert (second.text, second.author, second.reach, second.is_repost) == ("Boosting: acme lost my data", "bob",
                                                                             12, True)
    assert second.url == "https://chaos.example/@kim/2" and second.lang == "en"
    assert second.created_at == T0 + timedelta(seconds=30)
    assert (third.text, third.lang) == ("work stuff\n\nacme layoffs", "de")
    assert fake.rest_queries() == [{"limit": ["40"]}]
    assert fake.requests[0][2]["Authorization"] == f"Bearer {TOKEN}"
    assert fake.requests[0][2]["User-Agent"].startswith("crisiswatch/")
    health = src.health()
    assert (health["polls"], health["items"], health["errors"], health["last_error"]) == (1, 3, 0, None)
    assert health["cursor"] == f"tag:acme={warned['id']}"
    assert health["last_success"] == "2026-11-23T15:00:00Z"


def test_walks_forward_through_link_prev_pages_from_the_cursor(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, *(make_status(n) for n in range(1, 4)))
    src = make_source(fake, tmp_path)
    list(src.poll_once())
    cursor = snowflake(T0 + timedelta(seconds=30), 3)
    backlog = [make_status(n) for n in range(4, 89)]
    fake.add(TAG, *backlog)

    items = list(src.poll_once())

    assert [i.id for i in items] == [pid(s) for s in backlog]
    queries = fake.rest_queries()[1:]
    assert queries == [
        {"limit": ["40"], "min_id": [cursor]},
        {"limit": ["40"], "min_id": [backlog[39]["id"]]},  # the rel="prev" URLs, verbatim
        {"limit": ["40"], "min_id": [backlog[79]["id"]]},
    ]
    assert fake.raw_queries[2:] == [f"min_id={backlog[39]['id']}&limit=40", f"min_id={backlog[79]['id']}&limit=40"]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, _, h in fake.requests)
    saved = CheckpointStore(tmp_path / "ckpt").load("masto")
    assert saved["cursors"] == {"tag:acme": backlog[-1]["id"]}
    assert list(src.poll_once()) == []
    assert fake.rest_queries()[-1] == {"limit": ["40"], "min_id": [backlog[-1]["id"]]}


def test_a_link_to_another_host_is_not_followed(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, make_status(1))
    src = make_source(fake, tmp_path)
    list(src.poll_once())
    fake.link_base = "http://elsewhere.example"  # the token must not travel there
    fake.add(TAG, *(make_status(n) for n in range(2, 50)))

    assert len(list(src.poll_once())) == 48
    assert fake.raw_queries[2] == f"limit=40&min_id={make_status(41)['id']}"  # rebuilt on our own server


def test_429_retry_after_is_honoured(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, make_status(1))
    fake.forced[TAG].append((429, {"Retry-After": "7", "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0"},
                             b'{"error":"Too many requests"}'))
    sleeps: list[float] = []
    src = make_source(fake, tmp_path, sleeps)

    items = list(src.poll_once())

    assert [i.id for i in items] == [pid(make_status(1))]
    assert sleeps == [7.0]
    assert src.http.rate_limited == 1 and len(fake.requests) == 2
    assert src.health()["errors"] == 0


def test_spent_rate_limit_waits_for_its_reset(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, make_status(1))
    fake.remaining = 0  # the answer says: none left until WALL + 30
    sleeps: list[float] = []
    src = make_source(fake, tmp_path, sleeps)

    assert len(list(src.poll_once())) == 1
    assert sleeps == [pytest.approx(30.0)]
    assert src.health()["rate_limit_waits"] == 1


def test_malformed_statuses_are_rejected_once_and_neighbours_still_come_through(
        fake: FakeMastodon, tmp_path: Path) -> None:
    bad_time = make_status(6, created_at="yesterday")
    no_uri = make_status(7)
    del no_uri["uri"]
    media_only = make_status(8, content="", spoiler_text="")
    bad_reblog = make_status(9, reblog=42)
    fake.add(TAG, make_status(5), bad_time, no_uri, media_only, bad_reblog, make_status(10))
    src = make_source(fake, tmp_path, lookback_s=3600)

    items = list(src.poll_once())

    assert [type(i).__name__ for i in items] == ["Post", "Rejected", "Rejected", "Rejected", "Rejected", "Post"]
    assert [i.id for i in items if isinstance(i, Post)] == [pid(make_status(5)), pid(make_status(10))]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [r.reason for r in rejected] == ["bad_timestamp", "missing_field", "missing_field", "wrong_type"]
    assert "yesterday" in rejected[0].detail and "uri" in rejected[1].detail and "no text" in rejected[2].detail
    assert rejected[0].origin == f"mastodon:{fake.base}{TAG}#{bad_time['id']}"
    assert orjson.loads(rejected[3].raw) == bad_reblog
    # the lookback re-reads all six: nothing comes twice, not even the rejects
    assert list(src.poll_once()) == []
    assert fake.rest_queries()[-1]["min_id"] != [make_status(10)["id"]]
    # an array entry that is not an object, and a status without an id
    fake.forced[TAG].append((200, {}, orjson.dumps(["just a string", {"uri": "x", "content": "<p>hi</p>"}])))
    odd = list(src.poll_once())
    assert [(r.reason, r.origin) for r in odd] == [("not_an_object", f"mastodon:{fake.base}{TAG}"),
                                                   ("missing_field", f"mastodon:{fake.base}{TAG}")]
    assert src.health()["items"] == 2 and src.health()["rejected"] == 6


def test_lookback_catches_a_late_remote_status_with_a_backdated_id(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, *(make_status(n) for n in range(1, 4)))
    src = make_source(fake, tmp_path, lookback_s=60)
    list(src.poll_once())
    late = make_status(99, at=T0 + timedelta(seconds=25))  # federated late: id below the cursor
    fake.add(TAG, late, make_status(4))

    items = list(src.poll_once())

    assert [i.id for i in items] == [pid(late), pid(make_status(4))]
    cursor_ms = int(snowflake(T0 + timedelta(seconds=30), 3)) >> 16
    assert fake.rest_queries()[-1]["min_id"] == [str((cursor_ms - 60_000) << 16)]


def test_restart_in_the_middle_of_a_page_gives_no_gap_and_no_duplicate(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, make_status(1))
    a = make_source(fake, tmp_path, max_pages=1, lookback_s=60)
    assert len(list(a.poll_once())) == 1
    backlog = [make_status(n) for n in range(2, 102)]
    fake.add(TAG, *backlog)

    first = list(a.poll_once())  # one page, then "behind"
    assert len(first) == 39 and a.behind  # the lookback re-read status 1: dropped as seen
    running = a.poll_once()
    middle = [next(running) for _ in range(15)]
    running.close()  # the process stops half-way through a page

    b = make_source(fake, tmp_path, max_pages=10, lookback_s=60)
    rest = list(b.poll_once())

    got = [i.id for i in first + middle + rest]
    assert got == [pid(s) for s in backlog]
    assert CheckpointStore(tmp_path / "ckpt").load("masto")["cursors"]["tag:acme"] == backlog[-1]["id"]


def test_items_loop_polls_again_at_once_when_behind_and_stops_on_the_event(
        fake: FakeMastodon, tmp_path: Path) -> None:
    fake.add(TAG, make_status(1))
    stop = threading.Event()
    src = make_source(fake, tmp_path, max_pages=1, stop=stop, interval_s=3600)
    list(src.poll_once())
    fake.add(TAG, *(make_status(n) for n in range(2, 92)))
    got = []
    watchdog = threading.Timer(5, stop.set)  # a broken loop fails the assertions instead of hanging
    watchdog.start()
    try:
        for item in src.items():
            got.append(item)
            if len(got) == 90:
                stop.set()
    finally:
        watchdog.cancel()
    assert [i.id for i in got] == [pid(make_status(n)) for n in range(2, 92)]
    assert src.health()["polls"] == 4


def test_same_status_in_two_timelines_comes_once_and_unknown_hashtag_is_not_an_error(
        fake: FakeMastodon, tmp_path: Path) -> None:
    shared = make_status(1)
    fake.add(TAG, shared)
    fake.add("/api/v1/timelines/public", shared, make_status(2))
    src = make_source(fake, tmp_path, timelines=[hashtag_timeline("acme"), hashtag_timeline("nobody"), PUBLIC])

    items = list(src.poll_once())

    assert [i.id for i in items] == [pid(shared), pid(make_status(2))]
    assert [p for p, _, _ in fake.requests] == [TAG, "/api/v1/timelines/tag/nobody", "/api/v1/timelines/public"]
    assert src.health()["errors"] == 0


def test_server_errors_are_counted_without_leaking_the_token(fake: FakeMastodon, tmp_path: Path) -> None:
    fake.forced[TAG] += [(503, {}, b"")] * 2 + [(401, {}, b'{"error":"The access token is invalid"}')]
    src = make_source(fake, tmp_path, max_retries=1)

    assert list(src.poll_once()) == []
    health = src.health()
    assert health["errors"] == 1 and "tag:acme" in health["last_error"] and "2 times" in health["last_error"]
    assert list(src.poll_once()) == []
    assert "401" in src.health()["last_error"] and "token_env" in src.health()["last_error"]
    assert TOKEN not in str(src.health())
    assert src.health()["last_success"] is None


# -- streaming ----------------------------------------------------------------------


def test_stream_heartbeat_update_drop_reconnect_and_rest_gap_fill(fake: FakeMastodon, tmp_path: Path) -> None:
    s0, s1, s2, s3, s4 = (make_status(n) for n in range(5))
    fake.add(TAG, s0)
    fake.streams = [
        [("await_rest", 1), ("send", b":)\n"), ("send", b":thump\n"), ("update", s1),
         ("send", b"event: delete\ndata: 12345\n\n"), ("send", b"event: update\ndata: {not json\n\n"),
         ("add", s2), ("add", s3), ("drop",)],  # posted while we are disconnected
        [("status", 503)],
        [("update", s4), ("send", b":thump\n"), ("hold",)],
    ]
    stop = threading.Event()
    watchdog = threading.Timer(10, stop.set)
    watchdog.start()
    src = make_source(fake, tmp_path, mode="stream", stop=stop, reconnect_base_s=0.0, lookback_s=60)
    got: list[Any] = []
    stream = src.items()
    try:
        for item in stream:
            got.append(item)
            if len(got) == 6:
                break
        stop.set()
        leftover = list(stream)
    finally:
        stream.close()
        watchdog.cancel()

    assert [i.id if isinstance(i, Post) else i.reason for i in got] == [
        pid(s0), pid(s1), "invalid_json", pid(s2), pid(s3), pid(s4)]
    assert leftover == []
    assert got[1].text == "My #acme order never arrived & support won't answer.\n" \
                          "Details: https://example.com/page/that/is/very/long\n\ncc @acme"
    assert got[2].raw == b"{not json" and got[2].origin == f"mastodon:{fake.base}{STREAM}?tag=acme"
    assert [p for p, _ in fake.stream_requests] == [f"{STREAM}?tag=acme"] * 3
    assert all(h["Authorization"] == f"Bearer {TOKEN}" and h["Accept"] == "text/event-stream"
               for _, h in fake.stream_requests)
    # gap fill after the reconnect: from the cursor (s1) less the lookback
    s1_ms = int(s1["id"]) >> 16
    assert fake.rest_queries()[0] == {"limit": ["40"]}
    assert fake.rest_queries()[1] == {"limit": ["40"], "min_id": [str((s1_ms - 60_000) << 16)]}
    health = src.health()
    assert health["connections"] == 2 and health["heartbeats"] >= 2 and health["errors"] == 2
    assert "503" in health["last_error"] and TOKEN not in str(health)
    assert CheckpointStore(tmp_path / "ckpt").load("masto")["cursors"] == {"tag:acme": s4["id"]}
    assert not any(t.name.startswith("masto-stream") and t.is_alive() for t in threading.enumerate())


def test_sse_parser_handles_comments_multiline_data_and_crlf() -> None:
    comments: list[bytes] = []
    lines = [b":)\n", b"event: update\r\n", b"data: {\"a\":\r\n", b"data: 1}\r\n", b"\r\n", b":thump\n",
             b"event: delete\n", b"data:42\n", b"\n", b"event: filters_changed\n", b"\n"]
    assert list(sse_events(lines, comments.append)) == [("update", b'{"a":\n1}'), ("delete", b"42")]
    assert comments == [b":)", b":thump"]


def test_helpers_html_and_link_header() -> None:
    assert html_to_text("<p>a&nbsp;&amp; b<br/>c</p><p>d</p>") == "a & b\nc\n\nd"
    links = parse_link_header('<https://m.example/api/v1/timelines/tag/x?limit=40&max_id=1>; rel="next", '
                              '<https://m.example/api/v1/timelines/tag/x?limit=40&min_id=9>; rel="prev"')
    assert links == {"next": "https://m.example/api/v1/timelines/tag/x?limit=40&max_id=1",
                     "prev": "https://m.example/api/v1/timelines/tag/x?limit=40&min_id=9"}


# -- builder --------------------------------------------------------------------------


def ctx(tmp_path: Path, **env: str) -> SourceContext:
    return SourceContext(checkpoints=CheckpointStore(tmp_path / "ckpt"), env=env)


def test_build_with_defaults(tmp_path: Path) -> None:
    src = build({"type": "mastodon", "instance": "https://mastodon.example/", "hashtags": ["#Acme", "acmecorp"],
                 "public": True, "token_env": "MASTO_TOKEN"}, "sources[0]", ctx(tmp_path, MASTO_TOKEN="tok"))
    assert src.name == "mastodon" and src.instance == "https://mastodon.example"
    assert [t.key for t in src.timelines] == ["tag:acme", "tag:acmecorp", "public"]
    assert src.timelines[0].rest_path == "/api/v1/timelines/tag/Acme"
    assert (src.mode, src.interval_s, src.max_pages, src.lookback_s) == ("poll", 60.0, 10, 60.0)
    assert src.http.bucket.rate == pytest.approx(1.0)  # 60 requests a minute
    assert src.streaming_url == "https://mastodon.example"
    named = build({"type": "mastodon", "name": "masto-eu", "instance": "https://m.example", "hashtags": ["x"],
                   "mode": "stream", "token_env": "T", "streaming_url": "https://streaming.m.example"},
                  "sources[1]", ctx(tmp_path, T="tok"))
    assert (named.name, named.mode, named.streaming_url) == ("masto-eu", "stream", "https://streaming.m.example")


@pytest.mark.parametrize(("table", "message"), [
    ({"hashtags": ["acme"]}, "sources[0].instance is required"),
    ({"instance": "mastodon.social", "hashtags": ["acme"]}, "sources[0].instance must be the server's base URL"),
    ({"instance": "https://m.example"}, "sources[0].hashtags is empty and sources[0].public is false"),
    ({"instance": "https://m.example", "hashtags": "acme"}, "sources[0].hashtags has the wrong type"),
    ({"instance": "https://m.example", "hashtags": ["#"]}, "sources[0].hashtags[0]"),
    ({"instance": "https://m.example", "hashtags": ["acme", "ACME"]}, "sources[0].hashtags lists #ACME twice"),
    ({"instance": "https://m.example", "public": "yes"}, "sources[0].public has the wrong type"),
    ({"instance": "https://m.example", "public": True, "mode": "push"}, "sources[0].mode must be"),
    ({"instance": "https://m.example", "public": True, "interval_s": 0}, "sources[0].interval_s must be > 0"),
    ({"instance": "https://m.example", "public": True, "interval_s": True}, "sources[0].interval_s has the wrong"),
    ({"instance": "https://m.example", "public": True, "requests_per_minute": -1},
     "sources[0].requests_per_minute must be > 0"),
    ({"instance": "https://m.example", "public": True, "max_pages": 0}, "sources[0].max_pages must be >= 1"),
    ({"instance": "https://m.example", "public": True, "lookback_s": -5}, "sources[0].lookback_s must be >= 0"),
    ({"instance": "https://m.example", "public": True, "token_env": "UNSET"},
     "sources[0].token_env: the environment variable UNSET is not set"),
    ({"instance": "https://m.example", "public": True, "mode": "stream"},
     "sources[0].token_env is required with mode = \"stream\""),
    ({"instance": "https://m.example", "hashtag": ["acme"]}, "unknown key sources[0].hashtag"),
])
def test_build_errors_name_the_key(tmp_path: Path, table: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceConfigError) as info:
        build({"type": "mastodon", **table}, "sources[0]", ctx(tmp_path))
    assert message in str(info.value)


def test_build_needs_a_checkpoint_dir() -> None:
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        build({"type": "mastodon", "instance": "https://m.example", "public": True}, "sources[0]", SourceContext())


def test_a_built_source_stops_at_once_when_the_stop_event_is_set(tmp_path: Path) -> None:
    context = ctx(tmp_path)
    context.stop.set()
    for mode_table in ({}, {"mode": "stream", "token_env": "T"}):
        context.env = {"T": "tok"}
        src = build({"type": "mastodon", "instance": "http://127.0.0.1:9", "hashtags": ["acme"], **mode_table},
                    "sources[0]", context)
        assert list(src.items()) == []
        assert src.health()["polls"] == 0 and src.health()["errors"] == 0
