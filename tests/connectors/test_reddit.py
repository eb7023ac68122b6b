"""The Reddit source against a local fake of Reddit's API (OAuth token endpoint + JSON listings).

The fake answers in Reddit's documented format: ``{"kind": "Listing", "data":
{"after", "before", "dist", "children": [{"kind": "t3"|"t1", "data": {...}}]}}``,
pages with ``limit`` / ``after``, issues application-only tokens for HTTP basic
``client_id:client_secret`` + ``grant_type=client_credentials``, refuses
unknown bearer tokens with 401, and can be told to answer 429 with
``Retry-After``, 500, or drop the connection.
"""

from __future__ import annotations

import base64
import random
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors import reddit
from connectors.checkpoint import CheckpointStore, DeferredCheckpoints
from connectors.http import HttpClient
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext

CLIENT_ID, CLIENT_SECRET = "cid-123", "s3cr3t-value"
UA = "python:test.crisiswatch:v0.1 (by /u/tester)"
T0 = 1_790_000_000  # 2026-09-21


def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def link(n: int, created: float, sub: str = "acme", **extra: Any) -> dict[str, Any]:
    ident = b36(1000 + n)
    data = {"id": ident, "name": f"t3_{ident}", "title": f"Post {n} about Acme", "selftext": "",
            "author": f"user{n}", "permalink": f"/r/{sub}/comments/{ident}/post_{n}/", "score": n,
            "created_utc": float(created), "subreddit": sub, "num_comments": 0, "is_self": True}
    data.update(extra)
    return {"kind": "t3", "data": data}


def comment(n: int, created: float, sub: str = "acme", **extra: Any) -> dict[str, Any]:
    ident = b36(50_000 + n)
    data = {"id": ident, "name": f"t1_{ident}", "body": f"Comment {n} on Acme", "author": f"commenter{n}",
            "permalink": f"/r/{sub}/comments/abc/post/{ident}/", "score": 2, "created_utc": float(created),
            "link_id": "t3_abc", "subreddit": sub}
    data.update(extra)
    return {"kind": "t1", "data": data}


class FakeReddit:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.listings: dict[str, list[dict[str, Any]]] = {}
        """Newest first, keyed by path (no .json) or, for searches, 'path?q=...'."""
        self.requests: list[dict[str, Any]] = []
        self.faults: list[tuple[str, str, dict[str, str]]] = []
        """(substring of the request path + query, action, headers); the first match is used up.
        Actions: an HTTP status (429, 500 ...), ``drop`` (close the connection without an answer) or
        ``truncate`` (close it half-way through the body)."""
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.expires_in = 3600
        self.token_answer: dict[str, Any] | None = None
        self.ratelimit: dict[str, str] = {}
        self.require_token = True

    def add(self, key: str, *children: dict[str, Any]) -> None:
        """Add children, newest first, in front of what the listing holds."""
        with self.lock:
            merged = [*children, *self.listings.get(key, [])]
            merged.sort(key=lambda c: -c["data"].get("created_utc", 0))
            self.listings[key] = merged

    def gets(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "GET"]


@pytest.fixture()
def fake() -> Iterator[tuple[str, FakeReddit]]:
    state = FakeReddit()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _record(self, method: str, body: bytes = b"") -> tuple[str, dict[str, list[str]]]:
            split = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(split.query)
            with state.lock:
                state.requests.append({"method": method, "path": split.path, "query": query,
                                       "headers": dict(self.headers.items()), "body": body})
            return split.path, query

        def _fault(self) -> bool:
            with state.lock:
                for i, (needle, action, headers) in enumerate(state.faults):  # noqa: B007 (used after the break)
                    if needle in self.path:
                        del state.faults[i]
                        break
                else:
                    return False
            if action == "drop":
                self.close_connection = True
                return True
            if action == "truncate":  # promise a body, send half of it, hang up
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"kind": "Listing", "da')
                self.close_connection = True
                return True
            self._answer(int(action), {"message": "fault", "error": int(action)}, headers)
            return True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path, _ = self._record("POST", body)
            if self._fault():
                return
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if path != "/api/v1/access_token" or self.headers.get("Authorization") != expected:
                self._answer(401, {"message": "Unauthorized", "error": 401})
                return
            if urllib.parse.parse_qs(body.decode()) != {"grant_type": ["client_credentials"]}:
                self._answer(400, {"error": "unsupported_grant_type"})
                return
            if state.token_answer is not None:
                self._answer(200, state.token_answer)
                return
            with state.lock:
                state.tokens_issued += 1
                token = f"tok-{state.tokens_issued}"
                state.valid_tokens.add(token)
            self._answer(200, {"access_token": token, "token_type": "bearer", "expires_in": state.expires_in,
                               "scope": "*"})

        def do_GET(self) -> None:
            path, query = self._record("GET")
            if self._fault():
                return
            if state.require_token:
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("bearer ") or auth[7:] not in state.valid_tokens:
                    self._answer(401, {"message": "Unauthorized", "error": 401})
                    return
            key = path.removesuffix(".json")
            if "q" in query:
                key += "?q=" + query["q"][0]
            with state.lock:
                children = list(state.listings.get(key, []))
            start = 0
            if "after" in query:
                names = [c["data"].get("name") for c in children]
                start = names.index(query["after"][0]) + 1 if query["after"][0] in names else len(children)
            limit = min(int(query.get("limit", ["25"])[0]), 100)
            page = children[start:start + limit]
            after = page[-1]["data"].get("name") if page and start + limit < len(children) else None
            self._answer(200, {"kind": "Listing", "data": {"after": after, "dist": len(page), "modhash": "",
                                                            "geo_filter": "", "children": page, "before": None}},
                         dict(state.ratelimit))

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()


class Clock:
    def __init__(self, now: float = T0 + 10_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_http(sleeps: list[float], **kw: Any) -> HttpClient:
    # a budget so large it never waits: recorded sleeps are the retries' alone
    return HttpClient("reddit", requests_per_minute=1e12, sleep=sleeps.append, wall=lambda: 1e9,
                      rng=random.Random(7), headers={"User-Agent": UA}, backoff_s=1.0, **kw)


def make_source(base: str, store_dir: Path, *, sleeps: list[float] | None = None,
                pauses: list[float] | None = None, wall: Clock | None = None, oauth: bool = True,
                ctx: SourceContext | None = None, **table: Any) -> reddit.RedditSource:
    ctx = ctx or SourceContext(checkpoints=CheckpointStore(store_dir),
                               env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    table = {"type": "reddit", "base_url": base, "auth_url": f"{base}/api/v1/access_token", **table}
    if oauth:
        table |= {"client_id_env": "RID", "client_secret_env": "RSECRET"}
    return reddit.build(table, "sources[0]", ctx, http=make_http([] if sleeps is None else sleeps),
                        pause=(pauses if pauses is not None else []).append, wall=wall or Clock())


def posts_of(items: list[Any]) -> list[Post]:
    return [i for i in items if isinstance(i, Post)]


def ids(items: list[Any]) -> list[str]:
    return [p.id for p in posts_of(items)]


# -- OAuth, requests and fields ---------------------------------------------------------------------


def test_oauth_token_then_listings_field_by_field(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new",
               link(1, T0, selftext="  The **Acme** blender exploded & it's <bad>  ", author="alice", score=42),
               link(2, T0 + 60, title="Crossposted: Acme recall", crosspost_parent="t3_zzz",
                    crosspost_parent_list=[{"name": "t3_zzz"}], author="[deleted]", score=-3))
    server.add("/r/acme/comments", comment(1, T0 + 30, body="Acme support never answered"))
    src = make_source(base, tmp_path, subreddits=["r/acme"])
    items = list(src.poll_once())

    post = server.requests[0]
    assert post["method"] == "POST" and post["path"] == "/api/v1/access_token"
    assert post["headers"]["Authorization"] == "Basic " + base64.b64encode(b"cid-123:s3cr3t-value").decode()
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert post["body"] == b"grant_type=client_credentials"
    gets = server.gets()
    assert [g["path"] for g in gets] == ["/r/acme/new", "/r/acme/comments"]
    for g in gets:
        assert g["headers"]["Authorization"] == "bearer tok-1"
        assert g["headers"]["User-Agent"] == UA
        assert g["query"] == {"limit": ["100"], "raw_json": ["1"]}

    assert all(isinstance(i, Post) for i in items)
    first, second, com = items
    assert first == Post(
        source="reddit", id=f"reddit:t3_{b36(1001)}",
        text="Post 1 about Acme\n\nThe **Acme** blender exploded & it's <bad>",
        created_at=datetime.fromtimestamp(T0, timezone.utc), author="u/alice",
        url=f"https://www.reddit.com/r/acme/comments/{b36(1001)}/post_1/", lang=None, reach=42, is_repost=False)
    assert first.created_at.tzinfo is timezone.utc
    assert second.id == f"reddit:t3_{b36(1002)}" and second.text == "Crossposted: Acme recall"
    assert second.is_repost is True and second.author is None and second.reach == 0
    assert second.created_at == datetime.fromtimestamp(T0 + 60, timezone.utc)
    assert com == Post(source="reddit", id=f"reddit:t1_{b36(50_001)}", text="Acme support never answered",
                       created_at=datetime.fromtimestamp(T0 + 30, timezone.utc), author="u/commenter1",
                       url=f"https://www.reddit.com/r/acme/comments/abc/post/{b36(50_001)}/", reach=2)
    health = src.health()
    assert health["polls"] == 1 and health["items"] == 3 and health["errors"] == 0
    assert health["last_error"] is None and health["last_success"] is not None
    assert f"new:r/acme=t3_{b36(1002)}@" in health["cursor"] and "comments:r/acme=t1_" in health["cursor"]

    # nothing new: nothing yielded, the token is reused
    assert list(src.poll_once()) == []
    assert server.tokens_issued == 1


def test_token_is_refreshed_on_401_and_before_it_expires(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    wall = Clock()
    src = make_source(base, tmp_path, subreddits=["acme"], include_comments=False, wall=wall)
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1001)}"]
    assert server.tokens_issued == 1

    server.valid_tokens.clear()  # Reddit revoked it: the next GET answers 401
    server.add("/r/acme/new", link(2, T0 + 60))
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1002)}"]
    assert server.tokens_issued == 2
    statuses = [(r["method"], r["headers"].get("Authorization", "")[:10]) for r in server.requests[-3:]]
    assert statuses == [("GET", "bearer tok"), ("POST", "Basic Y2lk"), ("GET", "bearer tok")]
    assert server.requests[-1]["headers"]["Authorization"] == "bearer tok-2"
    assert src.health()["errors"] == 0

    # expires_in = 3600: an hour later the token is renewed before use, without a 401
    before = len(server.requests)
    wall.now += 3600
    server.add("/r/acme/new", link(3, T0 + 120))
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1003)}"]
    assert [r["method"] for r in server.requests[before:]] == ["POST", "GET"]
    assert server.requests[-1]["headers"]["Authorization"] == "bearer tok-3"


def test_refused_credentials_are_an_error_that_never_shows_the_secret(fake: tuple[str, FakeReddit],
                                                                       tmp_path: Path) -> None:
    base, server = fake
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path), env={"RID": CLIENT_ID, "RSECRET": "wrong-secret"})
    src = make_source(base, tmp_path, subreddits=["acme"], ctx=ctx)
    assert list(src.poll_once()) == []
    health = src.health()
    assert health["errors"] == 2  # new and comments
    assert "client_id_env" in health["last_error"] and "401" in health["last_error"]
    assert "wrong-secret" not in health["last_error"] and CLIENT_ID not in health["last_error"]
    assert server.gets() == []

    # a 200 that carries an OAuth error is refused too
    server.token_answer = {"error": "invalid_grant"}
    src2 = make_source(base, tmp_path / "b", subreddits=["acme"], include_comments=False)
    assert list(src2.poll_once()) == []
    assert "invalid_grant" in src2.health()["last_error"]


# -- pagination, restart, failures ------------------------------------------------------------------


def test_pagination_over_several_pages_and_a_restart_in_the_middle(fake: tuple[str, FakeReddit],
                                                                    tmp_path: Path) -> None:
    base, server = fake
    old = [link(n, T0 + n * 60) for n in range(150)]
    server.add("/r/acme/new", *old)

    src = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    first = ids(src.poll_once())
    # no cursor yet: only the newest page, handed on oldest first
    assert first == [f"reddit:t3_{b36(1000 + n)}" for n in range(50, 150)]
    assert len(server.gets()) == 1

    fresh = [link(n, T0 + n * 60) for n in range(150, 400)]
    server.add("/r/acme/new", *fresh)
    expected = [f"reddit:t3_{b36(1000 + n)}" for n in range(150, 400)]
    before = len(server.requests)

    a = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    gen = a.poll_once()
    got_a = [next(gen).id for _ in range(101)]
    # the walk read three pages, chaining `after`, before handing anything on
    pages = server.gets()[-3:]
    assert [p["query"].get("after") for p in pages] == [
        None, [f"t3_{b36(1000 + 300)}"], [f"t3_{b36(1000 + 200)}"]]
    assert len(server.requests) - before == 4  # token + 3 pages
    # a page (100 items) was handed on and the consumer asked for more: the checkpoint is on disk
    saved = CheckpointStore(tmp_path).load("reddit")
    assert saved["listings"]["new:r/acme"]["fullname"] == f"t3_{b36(1000 + 249)}"
    assert set(expected[:100]) <= set(saved["seen"]) and expected[100] not in saved["seen"]
    got_a += [next(gen).id for _ in range(29)]
    gen.close()  # the process stops in the middle of the batch

    b = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    got_b = ids(b.poll_once())
    assert got_a + got_b == expected  # neither gaps nor duplicates, in event-time order
    assert len(got_b) == 120
    assert b.health()["gaps"] == 0


def test_deferred_checkpoints_reach_disk_only_when_the_ingest_commits(fake: tuple[str, FakeReddit],
                                                                      tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    deferred = DeferredCheckpoints(CheckpointStore(tmp_path))
    ctx = SourceContext(checkpoints=deferred, env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    src = make_source(base, tmp_path, ctx=ctx, subreddits=["acme"], include_comments=False)
    assert len(ids(src.poll_once())) == 1
    assert CheckpointStore(tmp_path).load("reddit") == {}  # not delivered yet
    deferred.commit(deferred.pending())
    server.add("/r/acme/new", link(2, T0 + 60))
    again = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    assert ids(again.poll_once()) == [f"reddit:t3_{b36(1002)}"]


def test_walk_failing_half_way_hands_nothing_on_and_the_next_poll_has_no_gap(
        fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(0, T0))
    sleeps: list[float] = []
    src = make_source(base, tmp_path, sleeps=sleeps, subreddits=["acme"], include_comments=False)
    assert len(ids(src.poll_once())) == 1
    server.add("/r/acme/new", *[link(n, T0 + n * 60) for n in range(1, 151)])

    server.faults.extend([("after=", "500", {})] * 6)  # the second page fails beyond the 5 retries
    assert list(src.poll_once()) == []
    health = src.health()
    assert health["errors"] == 1 and "failed 6 times; last: HTTP 500" in health["last_error"]
    assert health["last_error"].startswith("new:r/acme: ") and "tok-" not in health["last_error"]
    assert [g["query"].get("after") is not None for g in server.gets()[-7:]] == [False] + [True] * 6
    assert len(sleeps) == 5  # backed off five times, then gave up
    assert CheckpointStore(tmp_path).load("reddit")["listings"]["new:r/acme"]["fullname"] == f"t3_{b36(1000)}"

    assert not server.faults
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1000 + n)}" for n in range(1, 151)]


def test_429_with_retry_after_and_a_dropped_connection_are_retried(fake: tuple[str, FakeReddit],
                                                                    tmp_path: Path) -> None:
    base, server = fake
    server.add("/search?q=acme corp", link(1, T0, sub="gadgets"), link(2, T0 + 5, sub="news"))
    server.faults += [("/search", "429", {"Retry-After": "7"}), ("/search", "drop", {})]
    sleeps: list[float] = []
    src = make_source(base, tmp_path, sleeps=sleeps, queries=["acme corp"])
    got = list(src.poll_once())
    assert ids(got) == [f"reddit:t3_{b36(1001)}", f"reddit:t3_{b36(1002)}"]
    assert got[1].url == f"https://www.reddit.com/r/news/comments/{b36(1002)}/post_2/"
    assert sleeps[0] == 7.0  # Retry-After honoured
    assert len(sleeps) == 2 and 0 <= sleeps[1] <= 2.0  # then a jittered backoff after the drop
    assert src.http.rate_limited == 1 and src.http.retries == 2
    searches = server.gets()
    assert len(searches) == 3 and all(s["path"] == "/search" for s in searches)
    assert searches[-1]["query"] == {"q": ["acme corp"], "sort": ["new"], "type": ["link"], "limit": ["100"],
                                     "raw_json": ["1"]}
    assert src.health()["errors"] == 0


def test_connection_dropped_mid_body_is_retried(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    server.faults.append(("/r/acme/new", "truncate", {}))
    sleeps: list[float] = []
    src = make_source(base, tmp_path, sleeps=sleeps, subreddits=["acme"], include_comments=False)
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1001)}"]
    assert src.http.retries == 1 and len(sleeps) == 1
    assert [g["path"] for g in server.gets()] == ["/r/acme/new"] * 2
    assert src.health()["errors"] == 0


def test_malformed_children_are_rejected_once(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    no_time = link(5, T0)
    del no_time["data"]["created_utc"]
    bad_type = link(6, T0)
    bad_type["data"]["created_utc"] = "yesterday"
    no_title = link(7, T0 + 1)
    del no_title["data"]["title"]
    server.listings["/r/acme/new"] = [link(9, T0 + 9), no_time, bad_type, {"kind": "t5", "data": {"name": "t5_x"}},
                                      link(1, T0), no_title, "not a child"]  # type: ignore[list-item]
    src = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    got = list(src.poll_once())
    rejects = [i for i in got if isinstance(i, Rejected)]
    reasons = sorted((r.reason, r.detail) for r in rejects)
    assert reasons == [
        ("missing_field", "created_utc is missing"),
        ("missing_field", "title is missing"),
        ("not_an_object", "a listing child must be an object with a 'data' object"),
        ("unsupported_kind", "kind 't5' is neither t3 (link) nor t1 (comment)"),
        ("wrong_type", "created_utc must be epoch seconds, got str"),
    ]
    missing = next(r for r in rejects if r.detail == "created_utc is missing")
    assert orjson.loads(missing.raw) == no_time
    assert missing.origin == f"reddit:new:r/acme:t3_{b36(1005)}"
    assert ids(got) == [f"reddit:t3_{b36(1001)}", f"reddit:t3_{b36(1009)}"]
    assert src.health()["rejected"] == 5

    # the same listing again: nothing new, and the bad children are not rejected a second time
    assert list(src.poll_once()) == []
    restarted = make_source(base, tmp_path, subreddits=["acme"], include_comments=False)
    assert list(restarted.poll_once()) == []


def test_overlap_picks_up_late_items_and_listings_share_the_seen_window(fake: tuple[str, FakeReddit],
                                                                         tmp_path: Path) -> None:
    base, server = fake
    shared = link(1, T0)
    server.add("/r/acme/new", shared, link(2, T0 + 600))
    server.add("/search?q=acme", shared)
    src = make_source(base, tmp_path, queries=["acme"], subreddits=["acme"], include_comments=False)
    first = ids(src.poll_once())
    assert first == [f"reddit:t3_{b36(1001)}", f"reddit:t3_{b36(1002)}"]  # the shared post once

    # a post created before the cursor shows up late (moderator approval / search lag), within overlap_s
    server.add("/r/acme/new", link(3, T0 + 600 - 200), link(4, T0 + 700))
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1003)}", f"reddit:t3_{b36(1004)}"]
    # one older than the overlap is beyond the cursor's reach
    server.add("/r/acme/new", link(5, T0 + 700 - 400))
    assert ids(src.poll_once()) == []


def test_ratelimit_headers_slow_the_source_down(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    server.add("/r/acme/comments", comment(1, T0))
    server.ratelimit = {"x-ratelimit-used": "996", "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"}
    pauses: list[float] = []
    src = make_source(base, tmp_path, pauses=pauses, subreddits=["acme"])
    assert len(list(src.poll_once())) == 2
    assert pauses == [43.0]  # before the second GET: nothing left until the window resets
    assert src.health()["ratelimit_remaining"] == 0.0

    server.ratelimit = {"x-ratelimit-used": "95", "x-ratelimit-remaining": "5.0", "x-ratelimit-reset": "100"}
    server.add("/r/acme/new", link(2, T0 + 60))
    list(src.poll_once())
    assert pauses == [43.0, 43.0, 20.0]  # little left: the rest spread over the window


def test_stopping_during_a_wait_ends_the_poll_without_an_error(fake: tuple[str, FakeReddit],
                                                               tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    server.add("/r/acme/comments", comment(1, T0))
    server.ratelimit = {"x-ratelimit-used": "600", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "300"}
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path), env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    src = make_source(base, tmp_path, ctx=ctx, subreddits=["acme"])
    src.pause = lambda s: ctx.stop.set()  # the process stops while waiting for Reddit's window
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1001)}"]
    assert [g["path"] for g in server.gets()] == ["/r/acme/new"]
    assert src.health()["errors"] == 0 and src.health()["last_error"] is None

    # a Retry-After wait of the HTTP client cut short by the stop event: not an error either
    ctx2 = SourceContext(checkpoints=CheckpointStore(tmp_path / "2"), env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    server.ratelimit = {}
    server.faults.append(("/r/acme/new", "429", {"Retry-After": "30"}))
    table = {"type": "reddit", "subreddits": ["acme"], "base_url": base, "client_id_env": "RID",
             "client_secret_env": "RSECRET", "auth_url": f"{base}/api/v1/access_token"}
    http = HttpClient("reddit", requests_per_minute=1e12, stop=ctx2.stop, sleep=lambda s: ctx2.stop.set())
    src2 = reddit.build(table, "sources[0]", ctx2, http=http)
    assert list(src2.poll_once()) == []
    assert src2.health()["errors"] == 0


def test_public_mode_uses_json_endpoints_without_a_token(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.require_token = False
    server.add("/r/acme+acmesupport/new", link(1, T0))
    server.add("/r/acme+acmesupport/comments", comment(1, T0 + 1))
    src = make_source(base, tmp_path, oauth=False, subreddits=["acme+acmesupport"])
    assert len(posts_of(list(src.poll_once()))) == 2
    assert [r["method"] for r in server.requests] == ["GET", "GET"]
    assert [r["path"] for r in server.requests] == ["/r/acme+acmesupport/new.json",
                                                    "/r/acme+acmesupport/comments.json"]
    assert all("Authorization" not in r["headers"] for r in server.requests)
    assert all(r["headers"]["User-Agent"] == UA for r in server.requests)


def test_restrict_sr_searches_inside_the_subreddits(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/gadgets/search?q=acme", link(1, T0, sub="gadgets"))
    src = make_source(base, tmp_path, queries=["acme"], subreddits=["gadgets"], restrict_sr=True)
    assert ids(src.poll_once()) == [f"reddit:t3_{b36(1001)}"]
    gets = server.gets()
    assert [g["path"] for g in gets] == ["/r/gadgets/search"]
    assert gets[0]["query"]["restrict_sr"] == ["1"] and gets[0]["query"]["sort"] == ["new"]


def test_items_loop_exits_promptly_when_stopped(fake: tuple[str, FakeReddit], tmp_path: Path) -> None:
    base, server = fake
    server.add("/r/acme/new", link(1, T0))
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path), env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    src = make_source(base, tmp_path, ctx=ctx, subreddits=["acme"], include_comments=False, interval_s=3600)
    got: list[Any] = []
    first = threading.Event()

    def run() -> None:
        for item in src.items():
            got.append(item)
            first.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert first.wait(5)
    ctx.stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert ids(got) == [f"reddit:t3_{b36(1001)}"]
    assert src.health()["polls"] == 1


# -- the builder ----------------------------------------------------------------------------------------


def test_builder_defaults(tmp_path: Path) -> None:
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path), env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    src = reddit.build({"type": "reddit", "subreddits": ["acme"], "client_id_env": "RID",
                        "client_secret_env": "RSECRET"}, "sources[0]", ctx)
    assert src.name == "reddit" and src.oauth and src.base_url == "https://oauth.reddit.com"
    assert src.auth_url == "https://www.reddit.com/api/v1/access_token"
    assert src.interval_s == 60.0 and src.max_pages == 10 and src.overlap_s == 300.0
    assert [listing.key for listing in src.listings] == ["new:r/acme", "comments:r/acme"]
    assert src.http.bucket.rate == pytest.approx(1.0)  # 60 a minute
    assert src.http.headers["User-Agent"].startswith("python:crisiswatch:")

    public = reddit.build({"type": "reddit", "name": "reddit-public", "queries": ["acme", "acme"]},
                          "sources[1]", ctx)
    assert public.name == "reddit-public" and not public.oauth and public.base_url == "https://www.reddit.com"
    assert public.http.bucket.rate == pytest.approx(10 / 60)
    assert [listing.key for listing in public.listings] == ["search:acme"]


@pytest.mark.parametrize(("table", "key"), [
    ({}, "queries"),
    ({"queries": []}, "queries"),
    ({"queries": ["acme", 3]}, "queries"),
    ({"queries": ["x" * 513]}, "queries"),
    ({"subreddits": ["not a sub!"]}, "subreddits"),
    ({"subreddits": "acme"}, "subreddits"),
    ({"subreddits": ["acme"], "client_id_env": "RID"}, "client_secret_env"),
    ({"subreddits": ["acme"], "client_secret_env": "RSECRET"}, "client_id_env"),
    ({"subreddits": ["acme"], "client_id_env": "RID", "client_secret_env": "UNSET"}, "client_secret_env"),
    ({"subreddits": ["acme"], "interval_s": 0}, "interval_s"),
    ({"subreddits": ["acme"], "interval_s": True}, "interval_s"),
    ({"subreddits": ["acme"], "requests_per_minute": -1}, "requests_per_minute"),
    ({"subreddits": ["acme"], "max_pages": 11}, "max_pages"),
    ({"subreddits": ["acme"], "overlap_s": -5}, "overlap_s"),
    ({"subreddits": ["acme"], "base_url": "oauth.reddit.com"}, "base_url"),
    ({"subreddits": ["acme"], "user_agent": " "}, "user_agent"),
    ({"subreddits": ["acme"], "restrict_sr": True}, "restrict_sr"),
    ({"subreddits": ["acme"], "subreddit": ["typo"]}, "subreddit"),
])
def test_builder_errors_name_the_key(tmp_path: Path, table: dict[str, Any], key: str) -> None:
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path), env={"RID": CLIENT_ID, "RSECRET": CLIENT_SECRET})
    with pytest.raises(SourceConfigError) as info:
        reddit.build({"type": "reddit", **table}, "sources[3]", ctx)
    assert f"sources[3].{key}" in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


def test_builder_needs_a_checkpoint_dir() -> None:
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        reddit.build({"type": "reddit", "subreddits": ["acme"]}, "sources[0]", SourceContext())
