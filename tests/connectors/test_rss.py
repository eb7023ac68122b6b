from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors import rss
from connectors.checkpoint import CheckpointStore
from connectors.http import HttpClient
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
WALL = 1_795_492_800.0  # 2026-11-24T04:00:00Z


@dataclass
class Feed:
    body: bytes
    etag: str | None
    modified: str | None
    ctype: str = "application/rss+xml; charset=utf-8"


@dataclass
class FeedServer:
    """Serves feeds by path with real conditional-GET semantics; faults are consumed one per request."""

    base: str = ""
    feeds: dict[str, Feed] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture()
def server() -> Iterator[FeedServer]:
    srv = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            srv.requests.append((path, dict(self.headers.items())))
            fault = srv.faults.get(path, []).pop(0) if srv.faults.get(path) else None
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "429":
                self._send(429, {"Retry-After": "7"}, b"slow down")
                return
            if fault == "truncate":
                self.send_response(200)
                self.send_header("Content-Length", "5000")
                self.end_headers()
                self.wfile.write(srv.feeds[path].body[:100])
                self.close_connection = True
                return
            feed = srv.feeds.get(path)
            if feed is None:
                self._send(404, {}, b"no such feed")
                return
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            if (inm is not None and inm == feed.etag) or (inm is None and ims is not None and ims == feed.modified):
                self._send(304, {"ETag": feed.etag or ""}, b"")
                return
            hdrs = {"Content-Type": feed.ctype}
            if feed.etag:
                hdrs["ETag"] = feed.etag
            if feed.modified:
                hdrs["Last-Modified"] = feed.modified
            self._send(200, hdrs, feed.body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield srv
    httpd.shutdown()
    httpd.server_close()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def source(urls: list[str], store: CheckpointStore, sleeps: list[float] | None = None,
           stop: threading.Event | None = None, **kw: object) -> rss.RssSource:
    http = HttpClient("rss-test", requests_per_minute=1e12, max_retries=kw.pop("max_retries", 3),  # type: ignore[arg-type]
                      sleep=(sleeps if sleeps is not None else []).append, wall=lambda: WALL)
    return rss.RssSource("rss", urls, store, stop=stop, http=http, wall=lambda: WALL, **kw)  # type: ignore[arg-type]


def posts(items: list[object]) -> list[Post]:
    return [i for i in items if isinstance(i, Post)]


def rejects(items: list[object]) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


RSS_ETAG = '"v1-abc"'
RSS_MODIFIED = "Mon, 23 Nov 2026 15:00:00 GMT"


def test_rss20_entries_become_posts_field_by_field(server: FeedServer, tmp_path: Path) -> None:
    server.feeds["/news.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    src = source([f"{server.base}/news.rss"], CheckpointStore(tmp_path))
    items = list(src.poll_once())
    got = posts(items)
    assert [p.id for p in got] == ["rss:news.example-2026-1123-001", "rss:https://news.example/2026/11/acme-apology",
                                   "rss:https://news.example/2026/11/opinion-kettle"]
    first, second, third = got
    assert first == Post(
        source="rss", id="rss:news.example-2026-1123-001",
        text="Acme recalls 2 million kettles after fires\n\nThe Acme Model K kettle can overheat & catch fire.\n\n"
             "Owners should stop using it.",
        created_at=utc(2026, 11, 23, 14, 15), author="desk@news.example (Jane Roe)",
        url="https://news.example/2026/11/acme-recall", lang=None, reach=None, is_repost=False)
    # CDATA with <br/> and a <script> that must not leak into the text
    assert second.text == 'Acme CEO: "We are sorry"\n\nIn a video, the CEO apologised.\nRefunds start Friday.'
    assert second.author == "Max Mustermann"
    assert second.created_at == utc(2026, 11, 23, 14, 2, 11)
    # no <guid>: the link is the id
    assert third.url == "https://news.example/2026/11/opinion-kettle" and third.author is None
    assert third.created_at.tzinfo is not None and third.created_at == utc(2026, 11, 23, 12)
    bad = rejects(items)
    assert [(r.reason, r.origin) for r in bad] == [("bad_timestamp", f"rss:{server.base}/news.rss#3"),
                                                   ("bad_timestamp", f"rss:{server.base}/news.rss#4")]
    assert "news.example-brief-17" in bad[0].detail and "neither" in bad[0].detail
    assert "sometime last week" in bad[1].detail and b"Acme shares slide" in bad[1].raw
    h = src.health()
    assert (h["polls"], h["items"], h["errors"], h["last_error"]) == (1, 3, 0, None)
    assert h["last_success"] == "2026-11-24T04:00:00Z" and RSS_ETAG in h["cursor"]


def test_atom_entries_become_posts_with_resolved_links(server: FeedServer, tmp_path: Path) -> None:
    server.feeds["/reviews.atom"] = Feed(fixture("atom.xml"), None, "Mon, 23 Nov 2026 10:30:00 GMT",
                                         ctype="application/atom+xml")
    src = source([f"{server.base}/reviews.atom"], CheckpointStore(tmp_path))
    items = list(src.poll_once())
    first, second = posts(items)
    assert first == Post(
        source="rss", id="rss:tag:reviews.example,2026:review-881",
        text="Acme Phone X review: great camera, awful battery\n\nBattery died in 4 hours.",
        created_at=utc(2026, 11, 23, 7), author="Sam Critic", url=f"{server.base}/reviews/881")
    # only <updated>, and the body is xhtml content (no summary)
    assert second.created_at == utc(2026, 11, 23, 14, 45, 30)
    assert second.text == "Follow-up: Acme support\n\nAcme support finally answered \u2014 a replacement is on its way."
    assert second.url == "https://reviews.example/reviews/882"
    (bad,) = rejects(items)
    assert bad.reason == "bad_timestamp" and "review-883" in bad.detail


def test_conditional_get_304_and_relisted_entries_are_not_repeated(server: FeedServer, tmp_path: Path) -> None:
    url = f"{server.base}/news.rss"
    server.feeds["/news.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    src = source([url], CheckpointStore(tmp_path))
    assert len(list(src.poll_once())) == 5
    assert list(src.poll_once()) == []  # 304
    assert server.requests[1][1]["If-None-Match"] == RSS_ETAG
    assert server.requests[1][1]["If-Modified-Since"] == RSS_MODIFIED
    assert src.health()["errors"] == 0 and src.health()["polls"] == 2
    # the feed changes: one new item on top, old ones (one edited) re-listed, the undated one again
    server.feeds["/news.rss"] = Feed(fixture("rss20_v2.xml"), '"v2-def"', "Mon, 23 Nov 2026 17:00:00 GMT")
    items = list(src.poll_once())
    assert [(type(i).__name__, getattr(i, "id", None)) for i in items] == [
        ("Post", "rss:news.example-2026-1123-009")]
    assert items[0].text == "Regulator opens probe into Acme kettles\n\nThe safety regulator has opened a formal " \
                            "investigation."
    assert server.requests[2][1]["If-None-Match"] == RSS_ETAG
    assert list(src.poll_once()) == []
    assert server.requests[3][1]["If-None-Match"] == '"v2-def"'


def test_last_modified_alone_is_used_when_there_is_no_etag(server: FeedServer, tmp_path: Path) -> None:
    server.feeds["/reviews.atom"] = Feed(fixture("atom.xml"), None, "Mon, 23 Nov 2026 10:30:00 GMT")
    src = source([f"{server.base}/reviews.atom"], CheckpointStore(tmp_path))
    assert len(list(src.poll_once())) == 3
    assert list(src.poll_once()) == []
    sent = server.requests[1][1]
    assert "If-None-Match" not in sent and sent["If-Modified-Since"] == "Mon, 23 Nov 2026 10:30:00 GMT"


def test_restart_in_the_middle_gives_no_gap_and_no_duplicate(server: FeedServer, tmp_path: Path) -> None:
    """Feed A is read, feed B's server is down; a new process resumes with the same checkpoints."""
    a, b = f"{server.base}/a.rss", f"{server.base}/b.atom"
    server.feeds["/a.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    server.feeds["/b.atom"] = Feed(fixture("atom.xml"), '"atom-1"', None)
    server.faults["/b.atom"] = ["drop", "drop"]
    store_dir = tmp_path / "ck"
    first = source([a, b], CheckpointStore(store_dir), max_retries=1)
    seen_first = [p.id for p in posts(list(first.poll_once()))]
    assert len(seen_first) == 3
    h = first.health()
    assert h["errors"] == 1 and "b.atom" in h["last_error"] and "2 times" in h["last_error"]

    server.feeds["/a.rss"] = Feed(fixture("rss20_v2.xml"), '"v2-def"', None)
    second = source([a, b], CheckpointStore(store_dir))
    seen_second = [p.id for p in posts(list(second.poll_once()))]
    assert server.requests[-2][1]["If-None-Match"] == RSS_ETAG  # the saved validator survived the restart
    everything = seen_first + seen_second
    assert len(everything) == len(set(everything))
    assert set(everything) == {
        "rss:news.example-2026-1123-001", "rss:https://news.example/2026/11/acme-apology",
        "rss:https://news.example/2026/11/opinion-kettle", "rss:news.example-2026-1123-009",
        "rss:tag:reviews.example,2026:review-881", "rss:tag:reviews.example,2026:review-882"}
    # rejects are remembered too: the undated brief re-listed in v2 is not sent to the dead letters again
    assert rejects(list(source([a, b], CheckpointStore(store_dir)).poll_once())) == []


def test_429_with_retry_after_and_a_dropped_connection_are_retried(server: FeedServer, tmp_path: Path) -> None:
    server.feeds["/news.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    server.faults["/news.rss"] = ["429", "drop"]
    sleeps: list[float] = []
    src = source([f"{server.base}/news.rss"], CheckpointStore(tmp_path), sleeps=sleeps)
    assert len(posts(list(src.poll_once()))) == 3
    assert sleeps[0] == 7.0 and len(sleeps) == 2  # Retry-After honoured, then a jittered backoff
    assert 0 <= sleeps[1] <= 2.0
    assert src.http.rate_limited == 1 and src.http.retries == 2 and src.health()["errors"] == 0


def test_unparseable_or_truncated_feed_is_an_error_and_the_next_poll_recovers(server: FeedServer,
                                                                              tmp_path: Path) -> None:
    server.feeds["/news.rss"] = Feed(b"<html><body>Please log in</body></html>", '"html"', None, ctype="text/html")
    src = source([f"{server.base}/news.rss?token=SECRET"], CheckpointStore(tmp_path))
    assert list(src.poll_once()) == []
    h = src.health()
    assert h["errors"] == 1 and "cannot parse the feed" in h["last_error"] and "SECRET" not in h["last_error"]
    assert h["cursor"] is None  # validators of a broken answer are not kept
    server.feeds["/news.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    server.faults["/news.rss"] = ["truncate"]
    # a body cut off mid-way is retried by the HTTP client within the same poll
    retries = src.http.retries
    assert len(posts(list(src.poll_once()))) == 3
    assert src.http.retries == retries + 1
    assert src.health()["errors"] == 1 and src.health()["last_success"] is not None


def test_a_broken_feed_still_gives_its_good_entries_and_rejects_the_broken_one(server: FeedServer,
                                                                              tmp_path: Path) -> None:
    whole = fixture("rss20.xml")
    cut = whole.index(b"<item>", whole.index(b"acme-apology")) + len(b"<item>")
    server.feeds["/news.rss"] = Feed(whole[:cut] + b"<description>half an item", '"cut"', None)
    src = source([f"{server.base}/news.rss"], CheckpointStore(tmp_path))
    items = list(src.poll_once())
    assert [p.id for p in posts(items)] == ["rss:news.example-2026-1123-001",
                                           "rss:https://news.example/2026/11/acme-apology"]
    (bad,) = rejects(items)
    assert (bad.reason, bad.detail) == ("missing_field", "entry has neither an id/guid nor a link")
    assert bad.origin.endswith("/news.rss#2") and src.health()["errors"] == 0  # feedparser kept nothing of it


def test_items_loop_polls_waits_and_stops_promptly(server: FeedServer, tmp_path: Path) -> None:
    server.feeds["/news.rss"] = Feed(fixture("rss20.xml"), RSS_ETAG, RSS_MODIFIED)
    stop = threading.Event()
    src = source([f"{server.base}/news.rss"], CheckpointStore(tmp_path), stop=stop, interval_s=3600)
    got: queue.Queue[object] = queue.Queue()
    done = threading.Event()

    def run() -> None:
        for item in src.items():
            got.put(item)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    first_poll = [got.get(timeout=5.0) for _ in range(5)]
    assert len(posts(first_poll)) == 3
    assert not done.is_set()  # waiting for the next poll
    stop.set()
    assert done.wait(5.0)
    assert got.empty()
    assert src.health()["polls"] == 1


def test_builder_validates_and_names_the_key(tmp_path: Path) -> None:
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path))
    src = rss.build({"type": "rss", "urls": ["https://news.example/feed"], "name": "news"}, "sources[0]", ctx)
    assert (src.name, src.interval_s, src.urls) == ("news", 300.0, ["https://news.example/feed"])
    assert src.http.bucket.rate == pytest.approx(0.5)
    assert rss.build({"type": "rss", "urls": ["http://x.example/a"]}, "s", ctx).name == "rss"
    cases = [
        ({"type": "rss"}, "sources[1].urls is required"),
        ({"type": "rss", "urls": []}, "sources[1].urls is empty"),
        ({"type": "rss", "urls": "https://x.example/feed"}, "sources[1].urls has the wrong type"),
        ({"type": "rss", "urls": ["ftp://x.example/feed"]}, "sources[1].urls[0] must be an http"),
        ({"type": "rss", "urls": ["https://x/a", "https://x/a"]}, "sources[1].urls lists the same feed twice"),
        ({"type": "rss", "urls": ["https://x/a"], "interval_s": 0}, "sources[1].interval_s must be > 0"),
        ({"type": "rss", "urls": ["https://x/a"], "interval_s": "5m"}, "sources[1].interval_s has the wrong type"),
        ({"type": "rss", "urls": ["https://x/a"], "requests_per_minute": -1}, "sources[1].requests_per_minute"),
        ({"type": "rss", "urls": ["https://x/a"], "intervall_s": 5}, "unknown key sources[1].intervall_s"),
    ]
    for table, message in cases:
        with pytest.raises(SourceConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            rss.build(table, "sources[1]", ctx)
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        rss.build({"type": "rss", "urls": ["https://x/a"]}, "sources[1]", SourceContext())


def test_html_to_text() -> None:
    assert rss.html_to_text("<p>a &amp; b</p><p>c<br>d</p>") == "a & b\n\nc\nd"
    assert rss.html_to_text("x <style>p{}</style><script>1<2</script> y") == "x y"
    assert rss.html_to_text("plain   text\n\n\n\nmore") == "plain text\n\nmore"
    assert rss.html_to_text("") == ""
