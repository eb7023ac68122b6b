"""The PagerDuty notifier against a real local HTTP server standing in for events.pagerduty.com.

The request body is checked field by field against "Send an Alert Event"
(PagerDuty developer docs, Events API v2); the answers are the documented ones.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from detectors import AlertEvent, Severity, Status
from listener.notifiers.base import NotifierConfigError, NotifierError
from listener.notifiers.pagerduty import ENDPOINT, PagerDutyNotifier, build, render
from listener.outbox import Dispatcher, DispatchSettings, Outbox

from ..http_receiver import HttpReceiver, http_receiver
from .delivery_helpers import notices

NOW = 1_790_000_000.0
ROUTING_KEY = "R0123456789abcdef0123456789abcd1"  # 32 characters, like an integration key
ACCEPTED = b'{"status":"success","message":"Event processed","dedup_key":"acme:20261124T0202Z"}'

# The documented schema (Events API v2, "Send an Alert Event").
TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
PAYLOAD_REQUIRED = {"summary", "source", "severity"}
SEVERITIES = {"critical", "error", "warning", "info"}


# --- a real receiver ------------------------------------------------------------------------------------------

@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    """A PagerDuty-shaped endpoint: 202 with PagerDuty's success body unless scripted otherwise."""
    with http_receiver((202, {}, ACCEPTED), path="/v2/enqueue", content_type="application/json") as r:
        yield r


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def shown(exc: BaseException) -> str:
    """Everything a log line or a logged traceback would show of an exception."""
    return repr(exc) + "".join(traceback.format_exception(exc))


# --- events ---------------------------------------------------------------------------------------------------

MENTIONS = [
    {"id": "sim7:17100", "text": "Deleting my Acme account after this data breach.\nTerrible security",
     "author": "@user48000", "reach": 761, "url": "https://example.com/mastodon/7/17100", "source": "mastodon"},
    {"id": "sim7:17091", "text": "The Acme data breach is a disaster", "author": "@user19321", "reach": 1039,
     "url": "https://example.com/bluesky/7/17091", "source": "bluesky"},
    {"id": "news:1", "text": "no link for this one", "author": None, "reach": 0, "url": None, "source": "news"},
]


def make_event(status: Status = Status.TRIGGERED, severity: Severity = Severity.ERROR, n: int = 0,
               **changes: Any) -> AlertEvent:
    """Shaped like the demo's events (test_demo_events_map_to_one_incident runs the real pipeline)."""
    started = 1_795_485_720  # 2026-11-24T02:02:00Z
    event = AlertEvent(
        id=f"acme:20261124T0202Z:{n}:{status.value}", crisis_id="acme:20261124T0202Z", brand="acme",
        status=status, severity=severity, at=started + 180, started_at=started,
        summary='Possible crisis for acme (error): 21 negative mentions in the last 10 min, 11.3x the usual 2; '
                '54% negative vs 12% usually. People are talking about "data breach". Respond within 30 min.',
        stats={"window_minutes": 10, "mentions": 39, "negatives": 21, "negative_share": 0.5385,
               "baseline_negative_share": 0.1171, "negative_ratio": 11.26, "negative_reach": 10986},
        evidence={"terms": [{"term": "data breach", "mentions": 15, "share": 0.714, "z": 4.18},
                            {"term": "credit card", "mentions": 4, "share": 0.19, "z": 2.15}],
                  "mentions": MENTIONS, "sources": {"mastodon": 7, "bluesky": 6, "news": 4}},
        playbook=("Respond fast: post a first holding statement within 30 minutes.",
                  "Pause all scheduled and promotional posts until this is resolved."),
    )
    return replace(event, **changes)


def notifier(url: str, link_base: str | None = "https://crisiswatch.example.com/crises",
             timeout_s: float = 5.0) -> PagerDutyNotifier:
    return PagerDutyNotifier("pagerduty", ROUTING_KEY, url, link_base, timeout_s, clock=lambda: NOW)


def send(receiver: HttpReceiver, event: AlertEvent, **kw: Any) -> dict[str, Any]:
    notifier(receiver.url, **kw).send(event.to_dict())
    return receiver.requests[-1].json()


# --- the request, field by field ------------------------------------------------------------------------------

def test_trigger_event_matches_the_documented_schema(receiver: HttpReceiver) -> None:
    event = make_event()
    body = send(receiver, event)
    req = receiver.requests[-1]
    assert req.method == "POST" and req.path == "/v2/enqueue"
    assert req.headers["content-type"] == "application/json"

    assert set(body) <= TOP_LEVEL and set(body["payload"]) <= PAYLOAD and PAYLOAD_REQUIRED <= set(body["payload"])
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "acme:20261124T0202Z" == event.crisis_id  # one incident per crisis
    assert len(body["dedup_key"]) <= 255

    p = body["payload"]
    assert p["summary"] == event.summary and len(p["summary"]) <= 1024
    assert p["source"] == "crisiswatch:acme"
    assert p["severity"] == "error" and p["severity"] in SEVERITIES
    assert p["timestamp"] == "2026-11-24T02:05:00Z" == event.to_dict()["at"]  # event time, not sending time
    assert p["component"] == "acme"
    assert p["group"] == "crisiswatch"
    assert p["class"] == "social media crisis"

    d = p["custom_details"]
    assert d["status"] == "triggered"
    assert d["alert_id"] == event.id
    assert d["crisis_id"] == event.crisis_id
    assert d["started_at"] == "2026-11-24T02:02:00Z"
    assert d["stats"] == event.stats
    assert d["terms"] == event.evidence["terms"]
    assert d["sources"] == event.evidence["sources"]
    assert d["playbook"] == list(event.playbook)
    assert [m["id"] for m in d["top_mentions"]] == ["sim7:17100", "sim7:17091", "news:1"]
    assert d["top_mentions"][0]["text"] == "Deleting my Acme account after this data breach. Terrible security"
    assert d["top_mentions"][1] == MENTIONS[1]

    assert body["links"] == [
        {"href": "https://example.com/mastodon/7/17100",
         "text": "mastodon · @user48000 (reach 761): Deleting my Acme account after this data breach. "
                 "Terrible security"},
        {"href": "https://example.com/bluesky/7/17091",
         "text": "bluesky · @user19321 (reach 1,039): The Acme data breach is a disaster"},
    ]  # one per mention with a url
    assert all(set(link) <= {"href", "text"} for link in body["links"])
    assert body["client"] == "crisiswatch"
    assert body["client_url"] == "https://crisiswatch.example.com/crises/acme:20261124T0202Z"
    assert "images" not in body


@pytest.mark.parametrize(("status", "action"), [
    (Status.TRIGGERED, "trigger"), (Status.ESCALATED, "trigger"), (Status.UPDATED, "trigger"),
    (Status.RESOLVED, "resolve"),
])
def test_event_action_per_status(receiver: HttpReceiver, status: Status, action: str) -> None:
    body = send(receiver, make_event(status))
    assert body["event_action"] == action
    assert body["dedup_key"] == "acme:20261124T0202Z"
    assert body["payload"]["custom_details"]["status"] == status.value


@pytest.mark.parametrize("severity", list(Severity))
def test_severity_is_passed_through(receiver: HttpReceiver, severity: Severity) -> None:
    assert send(receiver, make_event(severity=severity))["payload"]["severity"] == severity.value


def test_demo_events_map_to_one_incident(receiver: HttpReceiver) -> None:
    from connectors.simulator import demo_simulation
    from listener.offline import run_items
    from listener.pipeline import PipelineSettings

    events = run_items(demo_simulation().items(), PipelineSettings()).events
    n = notifier(receiver.url)
    for e in events:
        n.send(e.to_dict())
    bodies = [r.json() for r in receiver.requests]
    assert [b["event_action"] for b in bodies] == ["trigger"] * (len(events) - 1) + ["resolve"]
    assert {b["dedup_key"] for b in bodies} == {events[0].crisis_id}
    assert [b["payload"]["severity"] for b in bodies] == [e.severity.value for e in events]
    assert [b["payload"]["custom_details"]["alert_id"] for b in bodies] == [e.id for e in events]
    assert all(len(b["links"]) == len(events[0].evidence["mentions"]) for b in bodies[:1])


def test_long_summary_is_cut_to_1024_characters(receiver: HttpReceiver) -> None:
    body = send(receiver, make_event(summary="é" * 5000))
    assert len(body["payload"]["summary"]) == 1024 and body["payload"]["summary"].endswith("…")


def test_long_crisis_ids_still_give_one_short_key() -> None:
    brand = "b" * 300
    a = render(make_event(crisis_id=f"{brand}:20261124T0202Z", brand=brand).to_dict(), ROUTING_KEY)
    b = render(make_event(Status.RESOLVED, crisis_id=f"{brand}:20261124T0202Z", brand=brand).to_dict(), ROUTING_KEY)
    c = render(make_event(crisis_id=f"{brand}:20261124T0303Z", brand=brand).to_dict(), ROUTING_KEY)
    assert len(a["dedup_key"]) == 255 and a["dedup_key"] == b["dedup_key"] != c["dedup_key"]


def test_client_url_only_with_link_base(receiver: HttpReceiver) -> None:
    body = send(receiver, make_event(brand="café", crisis_id="café:20261124T0202Z"),
                link_base="https://cw.example.com/c/")
    assert body["client_url"] == "https://cw.example.com/c/caf%C3%A9:20261124T0202Z"
    assert "client_url" not in send(receiver, make_event(), link_base=None)


def test_oversized_details_are_dropped_to_fit_512_kb(receiver: HttpReceiver) -> None:
    body = send(receiver, make_event(stats={"blob": "x" * 600_000}))
    assert len(receiver.requests[-1].body) <= 512 * 1024
    assert "512 KB" in body["payload"]["custom_details"]["note"]
    assert body["payload"]["custom_details"]["alert_id"] == "acme:20261124T0202Z:0:triggered"
    assert body["payload"]["summary"] and body["dedup_key"] == "acme:20261124T0202Z"


def test_a_volume_notice_is_not_a_page(receiver: HttpReceiver) -> None:
    """A notice would open an incident nobody resolves: PagerDuty is not sent it."""
    notice = make_event(Status.NOTICE, Severity.INFO, crisis_id="acme:volume:20261124T0202Z",
                        id="acme:volume:20261124T0202Z:0:notice")
    notifier(receiver.url).send(notice.to_dict())
    assert receiver.requests == []
    send(receiver, make_event())  # the same notifier still pages crises
    assert len(receiver.requests) == 1


def test_an_event_that_cannot_be_sent_is_permanent(receiver: HttpReceiver) -> None:
    bad = {**make_event().to_dict(), "status": "exploded"}
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(bad)
    assert not err.value.retryable and "exploded" in str(err.value)
    assert receiver.requests == []


# --- answers --------------------------------------------------------------------------------------------------

def test_202_success(receiver: HttpReceiver) -> None:
    notifier(receiver.url).send(make_event().to_dict())  # no exception
    assert len(receiver.requests) == 1


def test_400_invalid_event_is_permanent_and_explained(receiver: HttpReceiver) -> None:
    receiver.answer(400, body=b'{"status":"invalid event","message":"Event object is invalid",'
                         b'"errors":["Length of \'routing_key\' is incorrect (should be 32 characters)"]}')
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert not err.value.retryable
    assert "HTTP 400" in str(err.value) and "Event object is invalid" in str(err.value)
    assert "should be 32 characters" in str(err.value)


def test_429_is_retryable_after_retry_after_or_30_s(receiver: HttpReceiver) -> None:
    receiver.answer(429, body=b'{"status":"throttle event","message":"Requests for this service are arriving too '
                              b'quickly.  Please retry later."}')
    receiver.answer(429, {"Retry-After": "5"})
    waits = []
    for _ in range(2):
        with pytest.raises(NotifierError) as err:
            notifier(receiver.url).send(make_event().to_dict())
        assert err.value.retryable
        waits.append(err.value.retry_after_s)
    assert waits == [30, 5]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retryable(receiver: HttpReceiver, status: int) -> None:
    receiver.answer(status, body=b"upstream trouble")
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert err.value.retryable and f"HTTP {status}" in str(err.value)


@pytest.mark.parametrize("status", [401, 403, 404, 413])
def test_other_4xx_is_permanent(receiver: HttpReceiver, status: int) -> None:
    receiver.answer(status)
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(make_event().to_dict())
    assert not err.value.retryable


def test_timeout_is_retryable() -> None:
    hung = socket.socket()  # accepts (kernel backlog) but never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        with pytest.raises(NotifierError) as err:
            notifier(f"http://127.0.0.1:{hung.getsockname()[1]}/v2/enqueue", timeout_s=0.2).send(
                make_event().to_dict())
    finally:
        hung.close()
    assert err.value.retryable


def test_refused_connection_is_retryable() -> None:
    with pytest.raises(NotifierError) as err:
        notifier(f"http://127.0.0.1:{closed_port()}/v2/enqueue").send(make_event().to_dict())
    assert err.value.retryable


# --- configuration --------------------------------------------------------------------------------------------

ENV = {"PD_KEY": ROUTING_KEY}
TABLE = {"type": "pagerduty", "name": "on-call", "routing_key_env": "PD_KEY"}


def test_build_from_a_receivers_table(receiver: HttpReceiver) -> None:
    n = build(TABLE, "receivers[2]", ENV)
    assert (n.name, n.url, n.link_base, n.timeout_s) == ("on-call", ENDPOINT, None, 10)
    assert n.url == "https://events.pagerduty.com/v2/enqueue"
    n = build({**TABLE, "url": receiver.url, "link_base": "https://cw.example.com/c/", "timeout_s": 2.5},
              "receivers[2]", {"PD_KEY": ROUTING_KEY + "\n"})
    assert (n.url, n.link_base, n.timeout_s) == (receiver.url, "https://cw.example.com/c/", 2.5)
    n.send(make_event().to_dict())
    body = receiver.requests[-1].json()
    assert body["routing_key"] == ROUTING_KEY  # stripped of the newline a secrets file leaves
    assert body["client_url"] == "https://cw.example.com/c/acme:20261124T0202Z"
    assert build({"type": "pagerduty", "routing_key_env": "PD_KEY"}, "receivers[2]", ENV).name == "pagerduty"


@pytest.mark.parametrize(("table", "env", "needle"), [
    ({**TABLE, "routing_key": ROUTING_KEY}, ENV, "unknown key receivers[2].routing_key"),
    ({**TABLE, "severity": "critical"}, ENV, "unknown key receivers[2].severity"),
    ({"type": "pagerduty"}, ENV, "receivers[2].routing_key_env is required"),
    (TABLE, {}, "PD_KEY is not set"),
    (TABLE, {"PD_KEY": "tooshort"}, "32-character Integration Key"),
    (TABLE, {"PD_KEY": ROUTING_KEY[:-1] + "!"}, "receivers[2].routing_key_env"),
    ({**TABLE, "url": "events.pagerduty.com/v2/enqueue"}, ENV, "receivers[2].url"),
    ({**TABLE, "link_base": "crisiswatch/crises"}, ENV, "receivers[2].link_base"),
    ({**TABLE, "timeout_s": -1}, ENV, "receivers[2].timeout_s"),
    ({**TABLE, "timeout_s": "10"}, ENV, "receivers[2].timeout_s"),
    ({**TABLE, "name": 3}, ENV, "receivers[2].name"),
])
def test_config_errors_name_the_key(table: dict, env: dict, needle: str) -> None:
    with pytest.raises(NotifierConfigError) as err:
        build(table, "receivers[2]", env)
    assert needle in str(err.value)
    assert ROUTING_KEY not in shown(err.value) and "tooshort" not in shown(err.value)


# --- secrets --------------------------------------------------------------------------------------------------

def test_routing_key_appears_nowhere_but_the_request(receiver: HttpReceiver) -> None:
    n = build({**TABLE, "url": receiver.url}, "receivers[0]", ENV)
    assert ROUTING_KEY not in repr(n) and ROUTING_KEY not in str(n)
    receiver.answer(400, body=b'{"status":"invalid event","message":"Unknown routing key ' + ROUTING_KEY.encode()
                    + b'","errors":["routing_key ' + ROUTING_KEY.encode() + b' not found"]}')
    with pytest.raises(NotifierError) as err:
        n.send(make_event().to_dict())
    assert ROUTING_KEY not in shown(err.value) and "[redacted]" in str(err.value)
    refused = PagerDutyNotifier("pd", ROUTING_KEY, f"http://127.0.0.1:{closed_port()}/v2/enqueue")
    with pytest.raises(NotifierError) as err:
        refused.send(make_event().to_dict())
    assert ROUTING_KEY not in shown(err.value)
    body = receiver.requests[-1].json()
    assert body["routing_key"] == ROUTING_KEY
    assert ROUTING_KEY not in orjson.dumps(body["payload"]).decode()  # only in routing_key


# --- with the outbox ------------------------------------------------------------------------------------------

def test_dispatcher_retries_a_5xx_then_marks_a_400_dead(receiver: HttpReceiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = [NOW]
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=lambda: clock[0])
    n = PagerDutyNotifier("pd", ROUTING_KEY, receiver.url, clock=lambda: clock[0])
    dispatcher = Dispatcher(outbox, {"pd": n}, DispatchSettings(rate_per_minute=6000), clock=lambda: clock[0])
    triggered, resolved = make_event(), make_event(Status.RESOLVED, n=1)
    outbox.enqueue(notices([triggered], ["pd"]))
    receiver.answer(500)
    assert dispatcher.run_once() == 1 and outbox.counts() == {"pending": 1}
    clock[0] += 700  # past any backoff
    assert dispatcher.run_once() == 1 and outbox.counts() == {"delivered": 1}
    outbox.enqueue(notices([triggered, resolved], ["pd"]))  # a replay after a crash adds only the new transition
    receiver.answer(400, body=b'{"status":"invalid event","message":"Event object is invalid","errors":["x"]}')
    clock[0] += 1
    assert dispatcher.run_once() == 1
    assert outbox.counts() == {"delivered": 1, "dead": 1}
    assert [r.json()["event_action"] for r in receiver.requests] == ["trigger", "trigger", "resolve"]
    assert "Event object is invalid" in outbox.rows("dead")[0]["last_error"]
    outbox.close()
