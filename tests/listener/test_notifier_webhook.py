"""The webhook notifier against a real HTTP server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import hashlib
import hmac
import socket
import traceback
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from detectors import AlertEvent, Severity, Status
from listener.alerts import to_json
from listener.notifiers.base import NotifierConfigError, NotifierError
from listener.notifiers.http import retry_after
from listener.notifiers.webhook import WebhookNotifier, build, header_value, sign, verify_signature
from listener.outbox import Dispatcher, DispatchSettings, Outbox

from ..http_receiver import HttpReceiver, http_receiver
from .delivery_helpers import notices

NOW = 1_790_000_000.0
SECRET = "whsec-0123456789abcdef-SIGNING"
TOKEN = "T0KEN-in-the-url-4f9a"


# --- a real receiver ------------------------------------------------------------------------------------------

@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    """A webhook endpoint: 200 "ok" unless scripted otherwise."""
    with http_receiver((200, {}, b"ok"), path="/hooks/crisis") as r:
        yield r


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) but never answers: a hung receiver."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- events ---------------------------------------------------------------------------------------------------

def make_event(status: Status = Status.TRIGGERED, brand: str = "acme", n: int = 0) -> AlertEvent:
    """Shaped like the demo's first event (see test_demo_events_end_to_end for the real pipeline's)."""
    started = 1_795_485_720  # 2026-11-24T02:02:00Z
    cid = f"{brand}:20261124T0202Z"
    return AlertEvent(
        id=f"{cid}:{n}:{status.value}", crisis_id=cid, brand=brand, status=status, severity=Severity.ERROR,
        at=started + 180, started_at=started,
        summary=f'Possible crisis for {brand} (error): 21 negative mentions in the last 10 min, 11.3x the usual 2.',
        stats={"window_minutes": 10, "mentions": 39, "negatives": 21, "negative_share": 0.5385,
               "baseline_negative_share": 0.1171, "negative_ratio": 11.26, "p_volume": 1.73e-08,
               "negative_reach": 10986},
        evidence={"terms": [{"term": "data breach", "mentions": 15, "share": 0.714, "z": 4.18}],
                  "mentions": [{"id": "sim7:17100", "text": "Deleting my account after this data breach",
                                "author": "@user48000", "reach": 761, "url": "https://example.com/m/17100",
                                "source": "mastodon"}],
                  "sources": {"mastodon": 7, "bluesky": 6}},
        playbook=("Respond fast.", "Pause scheduled posts."),
    )


def notifier(url: str, timeout_s: float = 5.0) -> WebhookNotifier:
    return WebhookNotifier("ops-hook", url, SECRET, timeout_s, clock=lambda: NOW)


# --- the request ----------------------------------------------------------------------------------------------

def test_posts_the_event_json_with_signed_headers(receiver: HttpReceiver) -> None:
    event = make_event()
    notifier(receiver.url_for(f"/hooks/{TOKEN}?k={TOKEN}")).send(event.to_dict())

    [req] = receiver.requests
    assert req.method == "POST"
    assert req.path == f"/hooks/{TOKEN}?k={TOKEN}"
    assert req.body == to_json(event)  # exactly AlertEvent.to_dict() through orjson
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-crisiswatch-event"] == "triggered"
    assert req.headers["x-crisiswatch-alert-id"] == "acme:20261124T0202Z:0:triggered"
    assert req.headers["idempotency-key"] == "acme:20261124T0202Z:0:triggered"  # the conventional header, same value
    assert req.headers["x-crisiswatch-timestamp"] == str(int(NOW))
    assert req.headers["user-agent"].startswith("crisiswatch/")
    # The documented scheme, computed independently: HMAC-SHA256(secret, "<timestamp>.<raw body>").
    expected = hmac.new(SECRET.encode(), f"{int(NOW)}.".encode() + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-crisiswatch-signature"] == f"sha256={expected}"
    assert verify_signature(SECRET, req.headers["x-crisiswatch-timestamp"], req.body,
                            req.headers["x-crisiswatch-signature"], now=NOW + 10)


def test_every_status_is_named_in_the_event_header(receiver: HttpReceiver) -> None:
    n = notifier(receiver.url)
    for i, status in enumerate(Status):
        n.send(make_event(status, n=i).to_dict())
    assert [r.headers["x-crisiswatch-event"] for r in receiver.requests] == [s.value for s in Status]
    assert [r.headers["x-crisiswatch-alert-id"] for r in receiver.requests] == [
        f"acme:20261124T0202Z:{i}:{s.value}" for i, s in enumerate(Status)]


def test_demo_events_end_to_end(receiver: HttpReceiver) -> None:
    from connectors.simulator import demo_simulation
    from listener.offline import run_items
    from listener.pipeline import PipelineSettings

    events = run_items(demo_simulation().items(), PipelineSettings()).events
    n = notifier(receiver.url)
    for e in events:
        n.send(e.to_dict())
    assert [r.body for r in receiver.requests] == [to_json(e) for e in events]
    assert all(verify_signature(SECRET, r.headers["x-crisiswatch-timestamp"], r.body,
                                r.headers["x-crisiswatch-signature"], now=NOW) for r in receiver.requests)


def test_non_ascii_ids_are_percent_encoded_in_headers(receiver: HttpReceiver) -> None:
    event = make_event(brand="café crème")
    notifier(receiver.url).send(event.to_dict())
    [req] = receiver.requests
    header = req.headers["x-crisiswatch-alert-id"]
    assert header.isascii() and " " not in header
    assert urllib.parse.unquote(header) == event.id
    assert header_value("acme:20261124T0202Z:0:triggered") == "acme:20261124T0202Z:0:triggered"


# --- verification ---------------------------------------------------------------------------------------------

def test_verify_signature_rejects_tampering_wrong_secret_and_replays() -> None:
    body = b'{"id":"x"}'
    ts = str(int(NOW))
    good = sign(SECRET, ts, body)
    assert verify_signature(SECRET, ts, body, good, now=NOW)
    assert verify_signature(SECRET, ts, body.decode(), good.upper().replace("SHA256=", "sha256="), now=NOW)
    assert verify_signature(SECRET, ts, body, good, now=NOW + 300)
    assert not verify_signature(SECRET, ts, body, good, now=NOW + 301)  # replayed later
    assert not verify_signature(SECRET, ts, body, good, now=NOW - 301)  # from the future
    assert verify_signature(SECRET, ts, body, good, tolerance_s=None, now=NOW + 10**6)
    assert not verify_signature(SECRET, ts, body + b" ", good, now=NOW)  # body changed
    assert not verify_signature(SECRET, str(int(NOW) + 1), body, good, now=NOW)  # timestamp changed
    assert not verify_signature("another-secret-0123456789", ts, body, good, now=NOW)
    assert not verify_signature(SECRET, ts, body, good.removeprefix("sha256="), now=NOW)
    assert not verify_signature(SECRET, ts, body, "", now=NOW)
    assert not verify_signature(SECRET, "12.5", body, good, now=NOW)
    assert not verify_signature(SECRET, "-1", body, good, tolerance_s=None)


# --- answers --------------------------------------------------------------------------------------------------

def test_5xx_is_retryable(receiver: HttpReceiver) -> None:
    receiver.answer(500, body=b"boom")
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert err.value.retryable and err.value.retry_after_s is None
    assert "HTTP 500" in str(err.value) and "boom" in str(err.value)


def test_503_passes_retry_after(receiver: HttpReceiver) -> None:
    receiver.answer(503, {"Retry-After": "120"})
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert err.value.retryable and err.value.retry_after_s == 120


def test_429_passes_retry_after_seconds_or_date(receiver: HttpReceiver) -> None:
    receiver.answer(429, {"Retry-After": "7"})
    receiver.answer(429, {"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 90, tz=timezone.utc),
                                                         usegmt=True)})
    n = notifier(receiver.url)
    waits = []
    for _ in range(2):
        with pytest.raises(NotifierError) as err:
            n.send(make_event().to_dict())
        assert err.value.retryable
        waits.append(err.value.retry_after_s)
    assert waits == [7, 90]


def test_retry_after_parsing() -> None:
    assert retry_after(None, NOW) is None
    assert retry_after("soon", NOW) is None
    assert retry_after("nan", NOW) is None
    assert retry_after("-5", NOW) == 0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0  # in the past


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_is_permanent(receiver: HttpReceiver, status: int) -> None:
    receiver.answer(status, body=b'{"error": "no such hook"}')
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert not err.value.retryable
    assert f"HTTP {status}" in str(err.value)


def test_409_is_retryable_an_idempotent_receiver_still_processing_the_same_key(receiver: HttpReceiver) -> None:
    receiver.answer(409, {"Retry-After": "7"})
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert err.value.retryable and err.value.retry_after_s == 7 and "HTTP 409" in str(err.value)


def test_408_is_retryable(receiver: HttpReceiver) -> None:
    receiver.answer(408)
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert err.value.retryable


def test_any_2xx_is_success(receiver: HttpReceiver) -> None:
    receiver.answer(202)
    receiver.answer(204)
    n = notifier(receiver.url)
    n.send(make_event().to_dict())
    n.send(make_event().to_dict())
    assert len(receiver.requests) == 2


def test_redirects_are_not_followed(receiver: HttpReceiver) -> None:
    receiver.answer(302, {"Location": receiver.url_for("/elsewhere")})
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert not err.value.retryable and "redirect" in str(err.value)
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/hooks/crisis")]


def test_timeout_is_retryable(silent_port: int) -> None:
    with pytest.raises(NotifierError) as err:
        notifier(f"http://127.0.0.1:{silent_port}/hook", timeout_s=0.2).send(make_event().to_dict())
    assert err.value.retryable and "0.2 s" in str(err.value)


def test_refused_connection_is_retryable() -> None:
    with pytest.raises(NotifierError) as err:
        notifier(f"http://127.0.0.1:{closed_port()}/hook").send(make_event().to_dict())
    assert err.value.retryable


# --- configuration --------------------------------------------------------------------------------------------

ENV = {"HOOK_URL": f"https://hooks.example.com/services/{TOKEN}", "HOOK_SECRET": SECRET}
TABLE = {"type": "webhook", "name": "ops-hook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}


def test_build_from_a_receivers_table() -> None:
    n = build({**TABLE, "timeout_s": 3}, "receivers[0]", ENV)
    assert n.name == "ops-hook" and n.timeout_s == 3 and n.destination == "hooks.example.com"
    assert build({k: v for k, v in TABLE.items() if k != "name"}, "receivers[0]", ENV).name == "webhook"
    assert build(TABLE, "receivers[0]", ENV).timeout_s == 10


@pytest.mark.parametrize(("table", "env", "needle"), [
    ({**TABLE, "url": "https://x"}, ENV, "unknown key receivers[1].url"),
    ({**TABLE, "secret": SECRET}, ENV, "unknown key receivers[1].secret"),
    ({k: v for k, v in TABLE.items() if k != "url_env"}, ENV, "receivers[1].url_env is required"),
    ({k: v for k, v in TABLE.items() if k != "secret_env"}, ENV, "receivers[1].secret_env is required"),
    (TABLE, {"HOOK_SECRET": SECRET}, "HOOK_URL is not set"),
    (TABLE, {**ENV, "HOOK_URL": f"ftp://hooks.example.com/{TOKEN}"}, "receivers[1].url_env"),
    (TABLE, {**ENV, "HOOK_URL": f"hooks.example.com/{TOKEN}"}, "http:// or https://"),
    (TABLE, {**ENV, "HOOK_URL": f"https://hooks.example.com:99999/{TOKEN}"}, "not a valid URL"),
    (TABLE, {**ENV, "HOOK_SECRET": "abc123"}, "receivers[1].secret_env"),
    ({**TABLE, "timeout_s": "10"}, ENV, "receivers[1].timeout_s"),
    ({**TABLE, "timeout_s": True}, ENV, "receivers[1].timeout_s"),
    ({**TABLE, "timeout_s": 0}, ENV, "receivers[1].timeout_s must be a positive"),
    ({**TABLE, "name": ""}, ENV, "receivers[1].name"),
])
def test_config_errors_name_the_key(table: dict, env: dict, needle: str) -> None:
    with pytest.raises(NotifierConfigError) as err:
        build(table, "receivers[1]", env)
    assert needle in str(err.value)
    assert TOKEN not in shown(err.value) and SECRET not in shown(err.value) and "abc123" not in shown(err.value)


# --- secrets ---

def shown(exc: BaseException) -> str:
    """Everything a log line or a logged traceback would show of an exception."""
    return repr(exc) + "".join(traceback.format_exception(exc))


# --- secrets (cont.) --------------------------------------------------------------------------------------------------

def test_secrets_appear_nowhere(receiver: HttpReceiver) -> None:
    url = receiver.url_for(f"/hooks/{TOKEN}?token={TOKEN}")
    n = build(TABLE, "receivers[0]", {"HOOK_URL": url, "HOOK_SECRET": SECRET})
    assert TOKEN not in repr(n) and SECRET not in repr(n)
    # A receiver that echoes the URL and the secret back in its error page.
    receiver.answer(500, body=f"cannot route {url} {SECRET} {urllib.parse.quote(TOKEN)}".encode())
    with pytest.raises(NotifierError) as err:
        n.send(make_event().to_dict())
    assert "[redacted]" in str(err.value)
    assert TOKEN not in shown(err.value) and SECRET not in shown(err.value)
    refused = build(TABLE, "receivers[0]", {"HOOK_URL": f"http://127.0.0.1:{closed_port()}/h/{TOKEN}",
                                              "HOOK_SECRET": SECRET})
    with pytest.raises(NotifierError) as err:
        refused.send(make_event().to_dict())
    assert err.value.retryable and TOKEN not in shown(err.value)
    [req] = receiver.requests
    assert SECRET.encode() not in req.body and SECRET not in str(req.headers)


# --- with the outbox ------------------------------------------------------------------------------------------

def test_dispatcher_delivers_and_honours_retry_after(receiver: HttpReceiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = [NOW]
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=lambda: clock[0])
    n = WebhookNotifier("ops-hook", receiver.url, SECRET, clock=lambda: clock[0])
    dispatcher = Dispatcher(outbox, {"ops-hook": n}, DispatchSettings(rate_per_minute=6000), clock=lambda: clock[0])
    outbox.enqueue(notices([make_event()], ["ops-hook"]))
    receiver.answer(429, {"Retry-After": "30"})
    assert dispatcher.run_once() == 1
    assert outbox.counts() == {"pending": 1}
    assert dispatcher.run_once() == 0  # not due before Retry-After
    clock[0] += 30
    assert dispatcher.run_once() == 1
    assert outbox.counts() == {"delivered": 1}
    first, second = receiver.requests
    assert first.body == second.body == to_json(make_event())
    assert first.headers["x-crisiswatch-alert-id"] == second.headers["x-crisiswatch-alert-id"]
    assert int(second.headers["x-crisiswatch-timestamp"]) == int(first.headers["x-crisiswatch-timestamp"]) + 30
    outbox.close()
