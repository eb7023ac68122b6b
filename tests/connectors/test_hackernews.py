from __future__ import annotations

import copy
import json
import queue
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors import hackernews
from connectors.checkpoint import CheckpointStore
from connectors.http import HttpClient
from connectors.post import Post
from connectors.source import Rejected, SourceConfigError, SourceContext

FIXTURE = Path(__file__).parent / "fixtures" / "hackernews" / "search_by_date_acme.json"
NOW = 1_795_435_200  # 2026-11-23T12:00:00Z; the fixture's hits are from 11:10 to 11:50
BASE = 1_795_431_600  # 11:00


def recorded_hits() -> list[dict[str, Any]]:
    return copy.deepcopy(json.loads(FIXTURE.read_text())["hits"])


def _when(hit: dict[str, Any]) -> int:
    """Where the index files a hit: by its created_at (also for a hit whose created_at_i is broken)."""
    return int(datetime.fromisoformat(hit["created_at"]).timestamp())


@dataclass
class Algolia:
    """A small /api/v1/search_by_date: tags (OR in parentheses), numericFilters on created_at_i, paging."""

    base: str = ""
    index: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    max_pages: int | None = None  # like Algolia's paginationLimitedTo
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, params: dict[str, str]) -> dict[str, Any]:
        hits = self.index.get(params["query"], [])
        tags = params.get("tags", "")
        wanted = set(tags.strip("()").split(",")) if tags else None
        if wanted:
            hits = [h for h in hits if wanted & set(h["_tags"])]
        for cond in filter(None, params.get("numericFilters", "").split(",")):
            m = re.fullmatch(r"created_at_i(>=|<=|>|<|=)(\d+)", cond)
            assert m, cond
            op, n = m.group(1), int(m.group(2))
            test = {">=": int.__ge__, "<=": int.__le__, ">": int.__gt__, "<": int.__lt__, "=": int.__eq__}[op]
            hits = [h for h in hits if test(_when(h), n)]
        hits = sorted(hits, key=lambda h: (-_when(h), h["objectID"]))
        per, page = int(params.get("hitsPerPage", 20)), int(params.get("page", 0))
        pages = -(-len(hits) // per)
        if self.max_pages is not None:
            pages = min(pages, self.max_pages)
        chunk = hits[page * per:(page + 1) * per] if page < pages else []
        return {"hits": chunk, "nbHits": len(hits), "page": page, "nbPages": pages, "hitsPerPage": per,
                "exhaustiveNbHits": True, "query": params["query"], "params": urllib.parse.urlencode(params),
                "processingTimeMS": 1}


@pytest.fixture()
def algolia() -> Iterator[Algolia]:
    srv = Algolia()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            srv.requests.append(params)
            fault = srv.faults.pop(0) if srv.faults else None
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "429":
                self._send(429, b'{"message":"Too many requests"}', {"Retry-After": "11"})
                return
            if fault == "html":
                self._send(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
                return
            assert url.path == "/api/v1/search_by_date", url.path
            self._send(200, json.dumps(srv.answer(params)).encode(), {"Content-Type": "application/json"})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    srv.base = f"http://127.0.0.1:{httpd.server_address[1]}/api/v1"
    yield srv
    httpd.shutdown()
    httpd.server_close()


def source(srv: Algolia, store: CheckpointStore, sleeps: list[float] | None = None, max_retries: int = 3,
           **kw: Any) -> hackernews.HackerNewsSource:
    http = HttpClient("hn-test", requests_per_minute=1e12, max_retries=max_retries,
                      sleep=(sleeps if sleeps is not None else []).append, wall=lambda: float(NOW))
    kw.setdefault("queries", ["acme"])
    kw.setdefault("hits_per_page", 3)
    return hackernews.HackerNewsSource("hackernews", store=store, base_url=srv.base, http=http,
                                       wall=lambda: float(NOW), **kw)


def posts(items: list[object]) -> list[Post]:
    return [i for i in items if isinstance(i, Post)]


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def test_pages_become_posts_field_by_field(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    src = source(algolia, CheckpointStore(tmp_path))
    items = list(src.poll_once())
    # 7 hits, 3 a page: pages 0, 1, 2 with the documented parameters
    assert [r["page"] for r in algolia.requests] == ["0", "1", "2"]
    assert algolia.requests[0] == {"query": "acme", "tags": "(story,comment)", "hitsPerPage": "3", "page": "0",
                                   "numericFilters": f"created_at_i>={NOW - 3600 - 120}"}
    story, comment, ask, other, prices = posts(items)
    assert story == Post(source="hackernews", id="hackernews:41000001", text="Acme Cloud outage: all regions down",
                         created_at=utc(BASE + 3000), author="jdoe",
                         url="https://news.ycombinator.com/item?id=41000001", reach=312)
    assert comment == Post(source="hackernews", id="hackernews:41000002",
                           text="Acme's status page says \"all green\".\n\nMeanwhile nothing works. "
                                "See https://status.acme.example/",
                           created_at=utc(BASE + 3000), author="hnuser",
                           url="https://news.ycombinator.com/item?id=41000002", reach=None)
    assert ask.text == "Ask HN: Is anyone else locked out of Acme?\n\nSince this morning I get 403 on every " \
                       "login.\n\nSupport is silent."
    assert (ask.reach, ask.created_at) == (57, datetime(2026, 11, 23, 11, 40, tzinfo=timezone.utc))
    assert other.text == "I moved to Globex last year & never looked back > 2 outages/month with Acme"
    assert (prices.id, prices.reach, prices.url) == ("hackernews:41000007", 12,
                                                      "https://news.ycombinator.com/item?id=41000007")
    bad = [i for i in items if isinstance(i, Rejected)]
    assert [(r.reason, r.origin) for r in bad] == [("bad_timestamp", "hackernews:acme:page1#0"),
                                                   ("missing_field", "hackernews:acme:page1#1")]
    assert "hackernews:41000004" in bad[0].detail and json.loads(bad[0].raw)["objectID"] == "41000004"
    assert "comment_text" in bad[1].detail
    h = src.health()
    assert (h["polls"], h["items"], h["errors"], h["last_error"]) == (1, 5, 0, None)
    assert h["last_success"] == "2026-11-23T12:00:00Z"
    assert h["cursor"] == f"'acme': created_at_i>={BASE + 3000}"
    # the next poll re-reads the overlap but yields nothing again, rejects included
    assert list(src.poll_once()) == []
    assert algolia.requests[-1]["numericFilters"] == f"created_at_i>={BASE + 3000 - 120}"


def test_429_retry_after_and_dropped_connection_are_retried(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    algolia.faults = [None, "429", "drop"]  # page 0 fine; page 1 rate limited, then the connection drops
    sleeps: list[float] = []
    src = source(algolia, CheckpointStore(tmp_path), sleeps=sleeps)
    assert len(posts(list(src.poll_once()))) == 5
    assert sleeps[0] == 11.0 and len(sleeps) == 2 and 0 <= sleeps[1] <= 2.0
    assert [r["page"] for r in algolia.requests] == ["0", "1", "1", "1", "2"]
    assert src.http.rate_limited == 1 and src.health()["errors"] == 0


def test_restart_in_the_middle_gives_no_gap_and_no_duplicate(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    algolia.faults = [None, "drop", "drop"]  # page 1 fails for good: the process gives up after page 0
    store_dir = tmp_path / "ck"
    first = source(algolia, CheckpointStore(store_dir), max_retries=1)
    got_first = [p.id for p in posts(list(first.poll_once()))]
    assert got_first == ["hackernews:41000001", "hackernews:41000002", "hackernews:41000003"]
    assert first.health()["errors"] == 1 and "RemoteDisconnected" in first.health()["last_error"]
    saved = CheckpointStore(store_dir).load("hackernews")["queries"]["acme"]
    assert saved == {"since": NOW - 3600, "upper": BASE + 2400, "newest": BASE + 3000}

    # meanwhile two new items arrive, one in the very second of the newest item already read
    algolia.index["acme"] += [
        {**recorded_hits()[6], "objectID": "41000010", "title": "Acme status: recovering", "points": 3,
         "created_at": "2026-11-23T11:55:00Z", "created_at_i": BASE + 3300, "_tags": ["story"]},
        {**recorded_hits()[1], "objectID": "41000011", "comment_text": "Same second as the outage story",
         "created_at_i": BASE + 3000},
    ]
    second = source(algolia, CheckpointStore(store_dir))
    got_second = [p.id for p in posts(list(second.poll_once()))]
    # the interrupted poll is finished first, bounded above by where it stopped
    assert algolia.requests[3]["numericFilters"] == f"created_at_i>={NOW - 3600 - 120},created_at_i<={BASE + 2400}"
    got_third = [p.id for p in posts(list(second.poll_once()))]
    assert algolia.requests[-1]["numericFilters"] == f"created_at_i>={BASE + 3000 - 120}"
    everything = got_first + got_second + got_third
    assert len(everything) == len(set(everything))
    assert sorted(everything) == ["hackernews:410000" + n for n in ("01", "02", "03", "06", "07", "10", "11")]
    assert got_third == ["hackernews:41000010", "hackernews:41000011"]
    assert second.health()["cursor"] == f"'acme': created_at_i>={BASE + 3300}"


def test_capped_pagination_continues_below_the_oldest_item(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    algolia.max_pages = 1  # the API stops paging early, as at its 1,000-hit limit
    src = source(algolia, CheckpointStore(tmp_path), hits_per_page=2)
    got = posts(list(src.poll_once()))
    assert [p.id for p in got] == ["hackernews:410000" + n for n in ("01", "02", "03", "06", "07")]
    filters = [r["numericFilters"] for r in algolia.requests]
    assert filters[0] == f"created_at_i>={NOW - 3720}"
    assert filters[1] == f"created_at_i>={NOW - 3720},created_at_i<={BASE + 3000}"
    # two hits in one second filled the capped answer: the next sweep starts below that second
    assert filters[2] == f"created_at_i>={NOW - 3720},created_at_i<={BASE + 2999}"
    assert src.health()["cursor"] == f"'acme': created_at_i>={BASE + 3000}"
    assert all(r["page"] == "0" for r in algolia.requests)


def test_an_item_indexed_late_is_caught_by_the_overlap(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    src = source(algolia, CheckpointStore(tmp_path), tags=["comment"], overlap_s=300)
    assert [p.id for p in posts(list(src.poll_once()))] == ["hackernews:41000002", "hackernews:41000006"]
    assert algolia.requests[0]["tags"] == "comment"
    late = {**recorded_hits()[1], "objectID": "41000020", "comment_text": "indexed late",
            "created_at": "2026-11-23T11:47:00Z", "created_at_i": BASE + 2820}
    algolia.index["acme"].append(late)
    (post,) = posts(list(src.poll_once()))
    assert (post.id, post.text, post.created_at) == ("hackernews:41000020", "indexed late", utc(BASE + 2820))


def test_a_broken_answer_is_an_error_and_the_next_poll_recovers(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    algolia.index["globex"] = [{**recorded_hits()[0], "objectID": "51", "title": "Globex is fine"}]
    algolia.faults = ["html"]
    src = source(algolia, CheckpointStore(tmp_path), queries=["acme", "globex"])
    got = posts(list(src.poll_once()))
    assert [p.id for p in got] == ["hackernews:51"]  # the other query still ran
    h = src.health()
    assert h["errors"] == 1 and "'acme'" in h["last_error"] and "not JSON" in h["last_error"]
    assert h["cursor"] == f"'acme': created_at_i>={NOW - 3600}; 'globex': created_at_i>={BASE + 3000}"
    assert len(posts(list(src.poll_once()))) == 5
    assert src.health()["errors"] == 1


def test_an_item_matching_two_queries_is_posted_once(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    algolia.index["acme cloud"] = recorded_hits()[:1]
    src = source(algolia, CheckpointStore(tmp_path), queries=["acme", "acme cloud"])
    ids = [p.id for p in posts(list(src.poll_once()))]
    assert len(ids) == len(set(ids)) == 5


def test_items_loop_polls_waits_and_stops_promptly(algolia: Algolia, tmp_path: Path) -> None:
    algolia.index["acme"] = recorded_hits()
    stop = threading.Event()
    src = source(algolia, CheckpointStore(tmp_path), stop=stop, interval_s=3600)
    got: queue.Queue[object] = queue.Queue()
    done = threading.Event()

    def run() -> None:
        for item in src.items():
            got.put(item)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert len(posts([got.get(timeout=5.0) for _ in range(7)])) == 5
    assert not done.is_set()
    stop.set()
    assert done.wait(5.0)
    assert got.empty() and src.health()["polls"] == 1


def test_builder_validates_and_names_the_key(tmp_path: Path) -> None:
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path))
    src = hackernews.build({"type": "hackernews", "queries": ["acme"]}, "sources[0]", ctx)
    assert (src.name, src.tags, src.interval_s, src.endpoint, src.hits_per_page) == (
        "hackernews", ["story", "comment"], 120.0, "https://hn.algolia.com/api/v1/search_by_date", 100)
    assert src.http.bucket.rate == pytest.approx(1.0)
    src = hackernews.build({"type": "hackernews", "queries": ["a"], "name": "hn2", "tags": ["story"],
                            "base_url": "http://127.0.0.1:9/api/v1/", "requests_per_minute": 30}, "s", ctx)
    assert (src.name, src.tags, src.endpoint) == ("hn2", ["story"], "http://127.0.0.1:9/api/v1/search_by_date")
    cases = [
        ({}, "sources[2].queries is required"),
        ({"queries": []}, "sources[2].queries is empty"),
        ({"queries": "acme"}, "sources[2].queries has the wrong type"),
        ({"queries": [""]}, r"sources\[2\].queries\[0\] must be a non-empty string"),
        ({"queries": ["a", "a"]}, "sources[2].queries lists the same query twice"),
        ({"queries": ["a"], "tags": []}, "sources[2].tags is empty"),
        ({"queries": ["a"], "tags": ["(story,comment)"]}, r"sources\[2\].tags\[0\] must be a tag"),
        ({"queries": ["a"], "base_url": "hn.algolia.com"}, "sources[2].base_url must be an http"),
        ({"queries": ["a"], "interval_s": -5}, "sources[2].interval_s must be > 0"),
        ({"queries": ["a"], "requests_per_minute": 0}, "sources[2].requests_per_minute must be > 0"),
        ({"queries": ["a"], "hits_per_page": 5000}, "sources[2].hits_per_page must be between 1 and 1000"),
        ({"queries": ["a"], "lookback_s": 1.5}, "sources[2].lookback_s has the wrong type"),
        ({"queries": ["a"], "overlap_s": -1}, "sources[2].overlap_s must be >= 0"),
        ({"queries": ["a"], "query": "b"}, "unknown key sources[2].query"),
    ]
    for table, message in cases:
        pattern = message if "\\" in message else re.escape(message)
        with pytest.raises(SourceConfigError, match=pattern):
            hackernews.build({"type": "hackernews", **table}, "sources[2]", ctx)
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        hackernews.build({"type": "hackernews", "queries": ["a"]}, "sources[2]", SourceContext())


def test_shutdown_interrupts_a_long_retry_after_wait(algolia: Algolia, tmp_path: Path) -> None:
    """The builder's client sleeps on the stop event: a Retry-After wait does not hold up shutdown."""
    algolia.faults = ["429"] * 5  # each asks for 11 s
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path))
    src = hackernews.build({"type": "hackernews", "queries": ["acme"], "base_url": algolia.base,
                            "requests_per_minute": 6000}, "sources[0]", ctx)
    done = threading.Event()
    out: list[object] = []
    thread = threading.Thread(target=lambda: (out.extend(src.items()), done.set()), daemon=True)
    thread.start()
    tick = threading.Event()
    for _ in range(500):  # until the first request has been answered with the 429 (5 s at most)
        if algolia.requests or tick.wait(0.01):
            break
    assert algolia.requests
    ctx.stop.set()
    assert done.wait(5.0)
    assert out == [] and src.health()["errors"] == 0  # stopping is not an error
    assert len(algolia.requests) == 1
