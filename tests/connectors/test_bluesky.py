"""The Bluesky Jetstream source against a local fake Jetstream (websockets.sync.server on 127.0.0.1)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from connectors import bluesky
from connectors.bluesky import BlueskyJetstream, build
from connectors.checkpoint import CheckpointStore
from connectors.mention import MAX_TEXT_CHARS
from connectors.post import Post
from connectors.source import Item, Rejected, SourceConfigError, SourceContext

FIXTURES = Path(__file__).parent / "fixtures" / "bluesky"
T0 = 1_795_000_000_000_000  # time_us, 2026-11-18
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ALICE = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
BOB = "did:plc:z72i7hdynmk6r22z27h6tvur"


def at(time_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=time_us)


def post_event(time_us: int, rkey: str, text: str | None, did: str = ALICE, *, op: str = "create",
               created: str | None = "2026-11-18T09:46:39.500Z", langs: list[str] | None = None,
               **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", **extra}
    if text is not None:
        record["text"] = text
    if created is not None:
        record["createdAt"] = created
    if langs is not None:
        record["langs"] = langs
    commit: dict[str, Any] = {"rev": f"3l{rkey[:8]}", "operation": op, "collection": "app.bsky.feed.post",
                              "rkey": rkey}
    if op != "delete":
        commit["record"] = record
        commit["cid"] = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


# -- the fake Jetstream ---------------------------------------------------------------------------------------------

@dataclass
class Session:
    """What one connection gets: ``messages`` (None = replay the log from the cursor), then how it ends."""

    messages: list[str] | None = None
    end: str = "hold"  # hold (until the client closes) | close (server closes: a drop) | abort (socket cut)
    status: int | None = None  # refuse the handshake with this HTTP status
    headers: dict[str, str] = field(default_factory=dict)


class FakeJetstream:
    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.live_from = 0
        """Where a connection without a cursor starts (the live tail)."""
        self.sessions: list[Session] = []
        self.paths: list[str] = []
        self.hellos: list[str] = []
        self.lock = threading.Lock()
        self.server: Server | None = None
        self.url = ""

    def _session(self) -> Session:
        with self.lock:
            return self.sessions.pop(0) if self.sessions else Session()

    def process_request(self, connection: ServerConnection, request: Any) -> Any:
        with self.lock:
            self.paths.append(request.path)
            refused = self.sessions[0] if self.sessions and self.sessions[0].status else None
            if refused is not None:
                self.sessions.pop(0)
        if refused is None:
            return None
        response = connection.respond(refused.status, "refused\n")
        for k, v in refused.headers.items():
            response.headers[k] = v
        return response

    def query(self, i: int) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.paths[i]).query)

    def handler(self, ws: ServerConnection) -> None:
        session = self._session()
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        try:
            if params.get("requireHello") == ["true"]:
                self.hellos.append(str(ws.recv(timeout=5)))
            messages = session.messages
            if messages is None:
                cursor = int(params["cursor"][0]) if "cursor" in params else None
                with self.lock:
                    events = self.log[self.live_from:] if cursor is None else \
                        [e for e in self.log if e["time_us"] >= cursor]
                messages = [dumps(e) for e in events]
            for m in messages:
                ws.send(m)
            if session.end == "close":
                ws.close(1011, "jetstream restarting")
            elif session.end == "abort":
                ws.socket.shutdown(socket.SHUT_RDWR)
            else:
                for _ in ws:
                    pass
        except ConnectionClosed:
            pass


@pytest.fixture()
def jetstream() -> Iterator[FakeJetstream]:
    fake = FakeJetstream()
    server = serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request)
    fake.server = server
    fake.url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/subscribe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    thread.join(5)


class Waits:
    """Records the reconnect delays instead of waiting them; returns True (stop) when the stop event is set."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.delays: list[float] = []

    def __call__(self, delay: float) -> bool:
        self.delays.append(delay)
        return self.stop.is_set()


def source(url: str, tmp_path: Path, **kw: Any) -> tuple[BlueskyJetstream, Waits]:
    stop = threading.Event()
    waits = Waits(stop)
    kw.setdefault("keywords", ["acme"])
    src = BlueskyJetstream(url=url, store=CheckpointStore(tmp_path / "checkpoints"), stop=stop, rewind_s=2.0,
                           checkpoint_every_s=0.0, backoff_s=1.0, max_backoff_s=30.0, read_timeout_s=0.02,
                           close_timeout_s=0.3, wait=waits, rng=random.Random(3), **kw)
    return src, waits


def run(src: BlueskyJetstream, done: Callable[[list[Item]], bool], *, how: str = "stop",
        deadline_s: float = 10.0) -> list[Item]:
    """Consume ``src.items()`` in a thread the way the ingest does, until ``done`` holds.

    ``how`` = ``stop``: set the stop event and let the generator end by itself; ``close``: take one more
    item, drop it unprocessed and close the generator (the ingest's ``break`` on stop).
    """
    got: list[Item] = []
    finished = threading.Event()

    def consume() -> None:
        gen = src.items()
        try:
            for item in gen:
                if done(got):  # what the ingest does when stop was set: drop the item, leave
                    break
                got.append(item)
                if done(got) and how == "stop":
                    src.stop.set()
        finally:
            gen.close()
            finished.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    if not finished.wait(deadline_s):
        src.stop.set()
        thread.join(5)
        pytest.fail(f"source did not finish; got {got!r}; health {src.health()}")
    return got


def posts(items: list[Item]) -> list[Post]:
    return [i for i in items if isinstance(i, Post)]


# -- tests ----------------------------------------------------------------------------------------------------------

def test_events_of_every_kind_field_by_field(jetstream: FakeJetstream, tmp_path: Path) -> None:
    documented = (FIXTURES / "documented_events.jsonl").read_text().splitlines()
    match = post_event(T0, "3lbwqrs2sds2c", "Acme's new update bricked my phone 😡", langs=["en", "fr"],
                       reply={"root": {"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "bafy"},
                              "parent": {"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "bafy"}})
    messages = [
        dumps(match),
        dumps(post_event(T0 + 1, "3lbwqrs2sds2d", "nothing to see here")),
        dumps(post_event(T0 + 2, "3lbwqrs2sds2c", "ACME edited", op="update")),
        dumps(post_event(T0 + 3, "3lbwqrs2sds2c", None, op="delete")),
        *documented,  # like (other collection), follow delete, identity, account
        '{"did": "did:plc:broken", "time_us": 17950000',  # cut short: malformed JSON
        dumps(post_event(T0 + 4, "3lbwqrs2sds2e", None, embed={"$type": "app.bsky.embed.images", "images": []})),
        dumps(post_event(T0 + 5, "3lbwqrs2sds2f", "acme: no createdAt", did=BOB, created=None)),
        dumps(post_event(T0 + 6, "3lbwqrs2sds2g", "acme from the future", created="2031-01-01T00:00:00Z",
                         langs=[])),
        dumps({"did": ALICE, "kind": "commit", "commit": {}}),  # no time_us
        dumps(post_event(T0 + 7, "3lbwqrs2sds2h", "last ACME one", created="2026-11-18T10:46:39+01:00")),
    ]
    jetstream.sessions.append(Session(messages))
    src, waits = source(jetstream.url, tmp_path, keywords=["ACME", "  "])
    got = run(src, lambda g: len(g) >= 7)

    first = got[0]
    assert first == Post(source="bluesky", id="bluesky:at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/"
                         "3lbwqrs2sds2c", text="Acme's new update bricked my phone 😡",
                         created_at=datetime(2026, 11, 18, 9, 46, 39, 500000, tzinfo=timezone.utc), author=ALICE,
                         url="https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz/post/3lbwqrs2sds2c",
                         lang="en", reach=None, is_repost=False)
    assert first.created_at.tzinfo is not None
    bad_json = got[1]
    assert isinstance(bad_json, Rejected) and bad_json.reason == "invalid_json"
    assert bad_json.raw == b'{"did": "did:plc:broken", "time_us": 17950000'
    assert bad_json.origin.startswith("bluesky:127.0.0.1:")
    no_text = got[2]
    assert isinstance(no_text, Rejected) and no_text.reason == "missing_field" and "text" in no_text.detail
    assert orjson.loads(no_text.raw)["commit"]["rkey"] == "3lbwqrs2sds2e"
    assert no_text.origin.endswith(f":time_us={T0 + 4}")
    no_created = got[3]
    assert isinstance(no_created, Post) and no_created.created_at == at(T0 + 5) and no_created.author == BOB
    assert no_created.lang is None
    future = got[4]
    assert isinstance(future, Post) and future.created_at == at(T0 + 6) and future.lang is None
    no_time = got[5]
    assert isinstance(no_time, Rejected) and no_time.reason == "missing_field" and "time_us" in no_time.detail
    last = got[6]
    assert isinstance(last, Post) and last.text == "last ACME one"
    assert last.created_at == datetime(2026, 11, 18, 9, 46, 39, tzinfo=timezone.utc)

    h = src.health()
    assert h["polls"] == 1 and h["items"] == 4 and h["rejected"] == 3 and h["errors"] == 0
    assert h["cursor"] == str(T0 + 7) and h["last_error"] is None
    assert h["last_success"] is not None and h["last_success"].endswith("Z")
    assert h["skipped"] == {"unmatched": 1, "lang_filtered": 0, "duplicate": 0, "update": 1, "delete": 1,
                            "other_collection": 2, "identity": 1, "account": 1, "other_kind": 0}
    assert h["created_at_fallbacks"] == 2
    assert waits.delays == []  # stopped, never reconnected
    q = jetstream.query(0)
    assert q["wantedCollections"] == ["app.bsky.feed.post"] and "cursor" not in q and "wantedDids" not in q
    state = CheckpointStore(tmp_path / "checkpoints").load("bluesky")
    assert state["cursor"] == T0 + 7 and len(state["seen"]) == 4


@pytest.mark.parametrize("end", ["close", "abort"])
def test_dropped_connection_reconnects_with_the_cursor(jetstream: FakeJetstream, tmp_path: Path, end: str) -> None:
    second = 1_000_000
    a = post_event(T0, "3aaaaaaaaaaaa", "acme one")
    b = post_event(T0 + second // 2, "3bbbbbbbbbbbb", "acme two")
    skip = post_event(T0 + second, "3cccccccccccc", "other")
    c = post_event(T0 + 2 * second, "3dddddddddddd", "acme three")
    jetstream.log = [a, b, skip, c]
    jetstream.sessions.append(Session([dumps(a), dumps(b), dumps(skip)], end=end))  # then drops
    src, waits = source(jetstream.url, tmp_path)
    got = run(src, lambda g: len(g) >= 3)

    assert [p.text for p in posts(got)] == ["acme one", "acme two", "acme three"]
    assert len(jetstream.paths) == 2
    assert "cursor" not in jetstream.query(0)
    assert jetstream.query(1)["cursor"] == [str(T0 + second - 2 * second)]  # last time_us minus rewind_s
    assert len(waits.delays) == 1 and 0.5 <= waits.delays[0] <= 1.0
    h = src.health()
    assert h["polls"] == 2 and h["reconnects"] == 1 and h["errors"] == 1
    assert "dropped" in h["last_error"] or "failed" in h["last_error"]
    assert h["skipped"]["duplicate"] == 2  # a and b came again in the rewound window
    assert h["cursor"] == str(T0 + 2 * second)


def test_backoff_grows_and_honours_retry_after(jetstream: FakeJetstream, tmp_path: Path) -> None:
    jetstream.sessions += [Session(status=503), Session(status=503), Session(status=429, headers={"Retry-After": "7"}),
                           Session([dumps(post_event(T0, "3aaaaaaaaaaaa", "acme"))])]
    src, waits = source(jetstream.url, tmp_path)
    got = run(src, lambda g: len(g) >= 1)
    assert [p.text for p in posts(got)] == ["acme"]
    assert len(waits.delays) == 3
    assert 0.5 <= waits.delays[0] <= 1.0 and 1.0 <= waits.delays[1] <= 2.0
    assert waits.delays[2] >= 7.0  # Retry-After wins over the 2-4 s backoff
    h = src.health()
    assert h["errors"] == 3 and h["polls"] == 4 and "HTTP 429" in h["last_error"]


@pytest.mark.parametrize("how", ["stop", "close"])
def test_restart_from_the_checkpoint_has_no_gaps_and_no_duplicates(jetstream: FakeJetstream, tmp_path: Path,
                                                                   how: str) -> None:
    second = 1_000_000
    log = []
    for i in range(24):
        text = f"acme post {i}" if i % 3 != 1 else f"unrelated {i}"
        log.append(post_event(T0 + i * second // 2, f"3k{i:011d}", text))
        if i % 5 == 0:
            log.append({"did": BOB, "time_us": T0 + i * second // 2 + 1, "kind": "identity",
                        "identity": {"did": BOB, "handle": "bob.test", "seq": i, "time": "2026-11-18T00:00:00Z"}})
    jetstream.log = log
    expected = [f"acme post {i}" for i in range(24) if i % 3 != 1]

    src1, _ = source(jetstream.url, tmp_path)
    first = run(src1, lambda g: len(g) >= 5, how=how)
    assert [p.text for p in posts(first)] == expected[:5]
    saved = CheckpointStore(tmp_path / "checkpoints").load("bluesky")
    assert saved["cursor"] >= log[6]["time_us"]

    # Connecting without a cursor would now start at the live tail and miss the middle.
    jetstream.live_from = len(log) - 2
    src2, _ = source(jetstream.url, tmp_path)
    assert src2.cursor == saved["cursor"]
    second_run = run(src2, lambda g: len(g) >= len(expected) - 5)
    assert jetstream.query(1)["cursor"] == [str(saved["cursor"] - 2 * second)]
    texts = [p.text for p in posts(first) + posts(second_run)]
    assert texts == expected  # every post once, in order
    assert src2.health()["skipped"]["duplicate"] >= 1  # the rewound overlap was really re-sent


def test_stop_is_noticed_while_connected_and_while_backing_off(jetstream: FakeJetstream, tmp_path: Path) -> None:
    src, _ = source(jetstream.url, tmp_path)  # the server holds the connection, sends nothing
    thread = threading.Thread(target=lambda: list(src.items()), daemon=True)
    thread.start()
    _wait_for(lambda: len(jetstream.paths) == 1)
    src.stop.set()
    thread.join(5)
    assert not thread.is_alive()

    stop = threading.Event()  # the real wait (stop.wait) with a long backoff against a refusing server
    jetstream.sessions += [Session(status=503)] * 3
    slow = BlueskyJetstream(["acme"], url=jetstream.url, stop=stop, backoff_s=600, max_backoff_s=600,
                            read_timeout_s=0.02)
    thread = threading.Thread(target=lambda: list(slow.items()), daemon=True)
    thread.start()
    _wait_for(lambda: slow.reconnects == 1)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and slow.polls == 1


def test_langs_and_dids(jetstream: FakeJetstream, tmp_path: Path) -> None:
    events = [post_event(T0, "3aaaaaaaaaaaa", "acme en-US", langs=["en-US"]),
              post_event(T0 + 1, "3bbbbbbbbbbbb", "acme de", langs=["de"]),
              post_event(T0 + 2, "3cccccccccccc", "acme none"),
              post_event(T0 + 3, "3dddddddddddd", "acme pt", langs=["ja", "PT-br"]),
              post_event(T0 + 4, "3eeeeeeeeeeee", "acme english?", langs=["eng"])]
    jetstream.sessions.append(Session([dumps(e) for e in events]))
    src, _ = source(jetstream.url, tmp_path, langs=["en", "pt"], dids=[ALICE, BOB])
    got = run(src, lambda g: len(g) >= 2)
    assert [(p.text, p.lang) for p in posts(got)] == [("acme en-US", "en-US"), ("acme pt", "ja")]
    assert src.health()["skipped"]["lang_filtered"] == 2
    assert jetstream.query(0)["wantedDids"] == [ALICE, BOB]

    many = [f"did:plc:{i:024d}" for i in range(150)]
    jetstream.sessions.append(Session([dumps(post_event(T0, "3aaaaaaaaaaaa", "acme", did=many[3]))]))
    src, _ = source(jetstream.url, tmp_path / "b", dids=many)
    got = run(src, lambda g: len(g) >= 1)
    q = jetstream.query(1)
    assert q["requireHello"] == ["true"] and "wantedDids" not in q
    hello = json.loads(jetstream.hellos[0])
    assert hello["type"] == "options_update"
    assert hello["payload"]["wantedDids"] == many
    assert hello["payload"]["wantedCollections"] == ["app.bsky.feed.post"]


def test_handle_rejects_and_limits(tmp_path: Path) -> None:
    src = BlueskyJetstream(["acme"])
    item, t = src.handle(dumps(post_event(T0, "3aaaaaaaaaaaa", "acme " + "x" * MAX_TEXT_CHARS)))
    assert isinstance(item, Rejected) and item.reason == "too_large" and t == T0
    item, t = src.handle(b"[1, 2]")
    assert isinstance(item, Rejected) and item.reason == "not_an_object" and t is None
    item, t = src.handle(dumps({**post_event(T0, "3a", "acme"), "did": "not a did"}))
    assert isinstance(item, Rejected) and item.reason == "invalid_value"
    item, t = src.handle(dumps(post_event(T0, "bad/rkey", "acme")))
    assert isinstance(item, Rejected) and "rkey" in item.detail
    item, t = src.handle(dumps({**post_event(T0, "3a", "acme"), "time_us": 5}))
    assert isinstance(item, Rejected) and item.reason == "bad_timestamp" and t is None
    item, t = src.handle(dumps({"did": ALICE, "time_us": T0, "kind": "sync"}))
    assert item is None and t == T0 and src.skipped["other_kind"] == 1
    item, t = src.handle(dumps(post_event(T0, "3a", "acme", created="2026-11-18T09:46:39")))  # no timezone
    assert isinstance(item, Post) and item.created_at == at(T0)
    item, t = src.handle(dumps(post_event(T0, "3b", "   ")))  # an image-only post: unmatched, not rejected
    assert item is None and src.skipped["unmatched"] == 1
    item, _ = src.handle(dumps(post_event(T0, "3c", "big ACME fan", created="2026-11-17T00:00:00.123456789Z")))
    assert isinstance(item, Post) and item.created_at == datetime(2026, 11, 17, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert src.handle(b"\xff\xfe")[0].reason == "invalid_json"  # type: ignore[union-attr]


def test_build_from_config(tmp_path: Path) -> None:
    ctx = SourceContext(checkpoints=CheckpointStore(tmp_path))
    src = build({"type": "bluesky", "keywords": ["Acme"], "name": "bsky-acme"}, "sources[0]", ctx)
    assert src.name == "bsky-acme" and src.url == bluesky.DEFAULT_URL and src.keywords == ("acme",)
    assert src.stop is ctx.stop and src.store is ctx.checkpoints and src.rewind_us == 5_000_000
    assert src.subscribe_url().startswith("wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections="
                                          "app.bsky.feed.post")
    src = build({"type": "bluesky", "keywords": ["a"], "url": "ws://127.0.0.1:1/subscribe?compress=false",
                 "langs": ["en"], "rewind_s": 10, "backoff_s": 0.5, "max_backoff_s": 5}, "sources[0]", ctx)
    assert src.subscribe_url().startswith("ws://127.0.0.1:1/subscribe?compress=false&wantedCollections=")
    assert src.langs == ("en",) and src.backoff_s == 0.5 and src.max_backoff_s == 5


@pytest.mark.parametrize(("table", "named"), [
    ({}, "sources[1].keywords is required"),
    ({"keywords": "acme"}, "sources[1].keywords"),
    ({"keywords": []}, "sources[1].keywords"),
    ({"keywords": ["acme", 3]}, "sources[1].keywords"),
    ({"keywords": ["acme"], "url": "https://jetstream.example/subscribe"}, "sources[1].url"),
    ({"keywords": ["acme"], "langs": [""]}, "sources[1].langs"),
    ({"keywords": ["acme"], "dids": ["alice.bsky.social"]}, "sources[1].dids"),
    ({"keywords": ["acme"], "rewind_s": -1}, "sources[1].rewind_s"),
    ({"keywords": ["acme"], "backoff_s": 10, "max_backoff_s": 1}, "sources[1].max_backoff_s"),
    ({"keywords": ["acme"], "rewind_s": True}, "sources[1].rewind_s"),
    ({"keywords": ["acme"], "keyword": ["x"]}, "sources[1].keyword"),
    ({"keywords": ["acme"], "name": ""}, "sources[1].name"),
])
def test_config_errors_name_the_key(tmp_path: Path, table: dict[str, Any], named: str) -> None:
    with pytest.raises(SourceConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        build({"type": "bluesky", **table}, "sources[1]", SourceContext(checkpoints=CheckpointStore(tmp_path)))


def test_build_needs_a_checkpoint_dir() -> None:
    with pytest.raises(SourceConfigError, match="checkpoint_dir"):
        build({"type": "bluesky", "keywords": ["acme"]}, "sources[0]", SourceContext())


def _wait_for(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            pytest.fail("condition not met before the deadline")
        threading.Event().wait(0.005)
