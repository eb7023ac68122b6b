"""Two real connectors (an RSS feed and the inbound webhook) into the real broker and the listener."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from connectors.kafka import KafkaSettings, Producer, read_all
from connectors.webhook import WebhookSource
from listener.alerts import MemorySink
from listener.app import configured_matcher, configured_sources, ingest, source_context
from listener.config import Config, IngestSettings, ListenerSettings
from listener.service import Listener

pytestmark = pytest.mark.broker

FEED = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link><description>x</description>
<item><guid>n1</guid><title>Acme kettles recalled after fires</title><link>https://news.example/1</link>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item><guid>n2</guid><title>Globex and ACME in merger talks</title><link>https://news.example/2</link>
<pubDate>Mon, 23 Nov 2026 10:00:10 GMT</pubDate></item>
<item><guid>n3</guid><title>Sunny weather all week</title><link>https://news.example/3</link>
<pubDate>Mon, 23 Nov 2026 10:00:20 GMT</pubDate></item>
</channel></rss>"""


@pytest.fixture()
def feed_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/news.rss"
    httpd.shutdown()
    httpd.server_close()


def wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.05)


def test_rss_and_webhook_mentions_are_counted_under_the_right_brands(
        kafka: KafkaSettings, feed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_WEBHOOK_TOKEN", "t" * 32)
    config = Config(
        kafka=kafka,
        listener=ListenerSettings(console=False, poll_timeout_ms=200),
        ingest=IngestSettings(checkpoint_dir=str(tmp_path / "cp")),
        sources=({"type": "rss", "urls": [feed_url], "interval_s": 3600},
                 {"type": "webhook", "token_env": "E2E_WEBHOOK_TOKEN", "port": 0}),
        brands=({"name": "acme", "keywords": ["acme"]}, {"name": "globex", "keywords": ["globex"]}),
    )
    stop = threading.Event()
    ctx = source_context(config, stop)
    sources = configured_sources(config, ctx)
    matcher = configured_matcher(config)
    reports: list = []
    feeder = threading.Thread(target=lambda: reports.append(
        ingest(config, stop, sources, matcher=matcher, checkpoints=ctx.checkpoints)), daemon=True)
    feeder.start()

    webhook = next(s for s, _ in sources if isinstance(s, WebhookSource))
    assert webhook.ready.wait(10)
    body = orjson.dumps([
        {"id": "w1", "source": "zapier", "text": "Globex outage again", "created_at": "2026-11-23T10:00:30Z"},
        {"id": "w2", "source": "zapier", "brand": "acme", "text": "form feedback",
         "created_at": "2026-11-23T10:00:40Z"},
        {"id": "w3", "source": "zapier", "text": "no timestamp"},
    ])
    req = urllib.request.Request(f"http://127.0.0.1:{webhook.port}/mentions", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + "t" * 32})
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = orjson.loads(resp.read())
    assert resp.status == 202 and answer["accepted"] == 2 and answer["rejected"][0]["index"] == 2

    wait_for(lambda: matcher.unmatched == 1 and len(read_all(kafka, kafka.mentions_topic, timeout_s=2,
                                                            idle_s=0.3)) >= 5)
    stop.set()
    feeder.join(30)
    assert not feeder.is_alive() and reports[0].published == 5 and reports[0].unmatched == 1
    (dead,) = read_all(kafka, kafka.dlq_topic, timeout_s=10)
    assert dict(dead.headers)["crisiswatch-reason"] == b"missing_field"

    producer = Producer(kafka)
    listener = Listener(config, producer, [MemorySink()])
    rows: list = []
    listener.pipeline.on_reading = rows.append
    deadline = time.monotonic() + 60
    while listener.stats.consumed < 5 and time.monotonic() < deadline:
        listener.step()
    listener.pipeline.flush()  # close the open minutes (before close() hands the partitions back)
    listener.close()
    producer.close()
    counted = Counter()
    for r in rows:
        counted[r.brand] += r.bucket.mentions
    # all within one minute: the two sources' arrival order cannot make any of them late
    assert dict(counted) == {"acme": 3, "globex": 2} and listener.pipeline.counters.late == 0
    assert listener.stats.consumed == 5 and not listener.stats.dead_letters
