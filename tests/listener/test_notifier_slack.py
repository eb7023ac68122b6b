"""The Slack notifier against a real local HTTP receiver (no mocks of our code)."""

from __future__ import annotations

import email.utils
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.simulator import demo_simulation
from detectors import AlertEvent, Severity, Status
from listener.notifiers import slack
from listener.notifiers.base import NotifierConfigError, NotifierError
from listener.offline import run_items
from listener.pipeline import PipelineSettings
from tests.http_receiver import HttpReceiver, http_receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETtoken42"
SECRET_MARK = "SECRETtoken42"


# --- a real receiver --------------------------------------------------------------------------------

@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver((200, {}, b"ok"), path=SECRET_PATH, content_type="text/plain") as r:
        yield r


def notifier(url: str, **table: Any) -> slack.SlackNotifier:
    return slack.build({"type": "slack", "name": "comms", "webhook_url_env": "SLACK_URL", **table},
                       "receivers[0]", {"SLACK_URL": url})


# --- events -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_events() -> list[dict[str, Any]]:
    return [e.to_dict() for e in run_items(demo_simulation().items(), PipelineSettings()).events]


def hand_event(status: Status = Status.TRIGGERED, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": f"acme:20261124T0202Z:0:{status.value}", "crisis_id": "acme:20261124T0202Z", "brand": "acme",
        "status": status, "severity": Severity.CRITICAL, "at": 1795917900, "started_at": 1795917720,
        "summary": "Possible crisis for acme: people talk about \"refund & <delay>\".",
        "stats": {"window_minutes": 10, "window_start": "2026-11-24T01:55:00Z",
                  "window_end": "2026-11-24T02:05:00Z", "mentions": 40, "negatives": 20, "negative_share": 0.5,
                  "baseline_mentions": 16.0, "baseline_negatives": 2.0, "baseline_negative_share": 0.125,
                  "negative_ratio": 10.0, "negative_reach": 12345, "duration_minutes": 42},
        "evidence": {"terms": [{"term": "refund & <delay>", "mentions": 8, "share": 0.4, "z": 3.0}],
                     "mentions": [
                         {"id": "x:1", "text": "Hey <@U123> & <script>alert(1)</script> <!channel>",
                          "author": "<!here>", "reach": 10, "url": "https://example.com/a?b=1&c=2", "source": "x"},
                         {"id": "x:2", "text": "line one\nline two", "author": "@b", "reach": 5,
                          "url": "javascript:alert(1)", "source": "reddit"},
                     ],
                     "sources": {"x": 1, "reddit": 1}},
        "playbook": ("Respond fast.", "Pause scheduled posts."),
    }
    fields.update(overrides)
    return AlertEvent(**fields).to_dict()


# --- checks on every payload ------------------------------------------------------------------------

def texts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, text) of every text object in the payload, the fallback included."""
    out = [("mrkdwn", payload["text"])]
    for b in payload["blocks"]:
        if "text" in b:
            out.append((b["text"]["type"], b["text"]["text"]))
        out += [(f["type"], f["text"]) for f in b.get("fields", [])]
        out += [(e["type"], e["text"]) for e in b.get("elements", []) if "text" in e]
    return out


def u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def assert_within_limits(payload: dict[str, Any]) -> None:
    assert set(payload) == {"text", "blocks"}
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    for b in blocks:
        assert b["type"] in {"header", "section", "context"}
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and 1 <= u16(b["text"]["text"]) <= 150
        elif b["type"] == "section":
            assert ("text" in b) != ("fields" in b)
            if "text" in b:
                assert b["text"]["type"] == "mrkdwn" and 1 <= u16(b["text"]["text"]) <= 3000
            else:
                assert 1 <= len(b["fields"]) <= 10
                assert all(f["type"] == "mrkdwn" and 1 <= u16(f["text"]) <= 2000 for f in b["fields"])
        else:
            assert 1 <= len(b["elements"]) <= 10
    for kind, text in texts(payload):
        if kind != "mrkdwn":
            continue
        # '<' and '>' only in our own http(s) links and quote markers; '&' only in the three entities
        bare = re.sub(r"(?m)^> ", "", re.sub(r"<https?://[^<>|\s]+\|[^<>]+>", "", text))
        assert "<" not in bare and ">" not in bare, text
        assert re.sub(r"&(amp|lt|gt);", "", text).count("&") == 0, text


# --- the payload ------------------------------------------------------------------------------------

def test_the_demo_triggered_event_field_by_field(receiver: HttpReceiver, demo_events: list[dict[str, Any]]) -> None:
    event = demo_events[0]
    assert event["status"] == "triggered"
    n = notifier(receiver.url, link_base="https://cw.example.com/crises/")
    assert n.send(event) is None

    (req,) = receiver.requests
    assert req.method == "POST" and req.path == SECRET_PATH
    assert req.headers["content-type"].startswith("application/json")
    payload = json.loads(req.body)
    assert_within_limits(payload)

    emoji = {"warning": "🟡", "error": "🟠", "critical": "🔴"}[event["severity"]]
    head = f"{emoji} CRISIS TRIGGERED · acme · {event['severity']}"
    assert payload["text"] == f"{head}: {event['summary']}"  # brand, severity, status, summary
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "section", "section", "context"]
    header, summary, numbers, terms, mentions, steps, link, context = payload["blocks"]

    assert header["text"] == {"type": "plain_text", "text": head, "emoji": True}
    assert summary["text"]["text"] == event["summary"]

    s = event["stats"]
    fields = [f["text"] for f in numbers["fields"]]
    w = s["window_minutes"]
    assert fields[0] == f"*Negative mentions ({w} min)*\n{s['negatives']} vs {s['baseline_negatives']:.1f} usual"
    assert fields[1] == (f"*Negative share*\n{s['negative_share']:.0%} vs {s['baseline_negative_share']:.0%} usual")
    assert fields[2] == (f"*Ratio*\n{s['negative_ratio']:.1f}× the usual negatives "
                         f"({s['negative_voices']:.0f} independent voices)")
    assert fields[3] == f"*Window*\n{w} min · {s['window_start'][11:16]}–{s['window_end'][11:16]} UTC"
    assert fields[4] == f"*Negative reach*\n{s['negative_reach']:,}"
    first_source = next(iter(event["evidence"]["sources"]))
    assert any(f.startswith(f"*Sources*\n{first_source} ") for f in fields)

    lines = terms["text"]["text"].split("\n")
    assert lines[0] == "*What people are upset about*"
    assert [re.search("“(.*)”", x).group(1) for x in lines[1:]] == [t["term"] for t in event["evidence"]["terms"]]

    quoted = mentions["text"]["text"].split("\n\n")
    want = event["evidence"]["mentions"][:3]
    assert 2 <= len(quoted) <= 3
    for part, m in zip(quoted, want):
        quote, meta = part.split("\n")[-2:]
        assert quote == f"> {m['text']}"
        assert meta == f"— *{m['author']}* · {m['source']} · reach {m['reach']:,} · <{m['url']}|link>"

    numbered = steps["text"]["text"].split("\n")
    assert numbered[0] == "*First steps*"
    assert numbered[1:] == [f"{i}. {p}" for i, p in enumerate(event["playbook"], 1)]

    assert link["text"]["text"] == f"🔗 <https://cw.example.com/crises/{event['crisis_id']}|Open the crisis in crisiswatch>"
    ctx = context["elements"][0]["text"]
    assert event["crisis_id"] in ctx and event["id"] in ctx and event["at"] in ctx


def test_the_docs_example_is_what_the_code_sends(demo_events: list[dict[str, Any]]) -> None:
    example = ROOT / "docs" / "slack-message-example.json"
    assert example.read_text(encoding="utf-8") == slack.example_json(demo_events[0]), (
        "regenerate it: python -m listener.notifiers.slack > docs/slack-message-example.json")
    assert_within_limits(json.loads(example.read_text(encoding="utf-8")))


def test_every_demo_event_renders_within_limits(demo_events: list[dict[str, Any]]) -> None:
    escalated = {**demo_events[0], "status": "escalated", "id": demo_events[0]["id"].replace("0:triggered", "9:x")}
    # the demo's own escalation (to critical) wins over the made-up one where it has one
    by_status = {e["status"]: slack.render_payload(e) for e in [escalated, *demo_events]}
    assert set(by_status) == {"triggered", "escalated", "updated", "resolved"}
    for payload in by_status.values():
        assert_within_limits(payload)
    resolved = by_status["resolved"]
    assert resolved["blocks"][0]["text"]["text"].startswith("🟢 CRISIS RESOLVED · acme · ")
    body = "\n".join(t for _, t in texts(resolved))
    assert f"Resolved after {demo_events[-1]['stats']['duration_minutes']} min" in body
    assert "First steps" not in body and "Representative mentions" not in body
    assert "*First steps*\n1. " in "\n".join(t for _, t in texts(by_status["escalated"]))
    assert "🟠 CRISIS ESCALATED" in by_status["escalated"]["text"]
    assert "Ongoing for" in "\n".join(t for _, t in texts(by_status["updated"]))


def test_user_text_is_escaped() -> None:
    payload = slack.render_payload(hand_event())
    assert_within_limits(payload)
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    mentions = next(t for t in sections if t.startswith("*Representative mentions*"))
    assert "> Hey &lt;@U123&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt;" in mentions
    assert "*&lt;!here&gt;*" in mentions
    assert "<https://example.com/a?b=1&amp;c=2|link>" in mentions
    assert "javascript:" not in mentions  # not a link
    assert "> line one line two" in mentions  # one quoted line per mention
    assert "“refund &amp; &lt;delay&gt;”" in next(t for t in sections if t.startswith("*What people"))
    assert "&quot;" not in json.dumps(payload)  # only the three entities
    raw = json.dumps(payload, ensure_ascii=False)
    assert "<@U123>" not in raw and "<!channel>" not in raw and "<script>" not in raw and "<!here>" not in raw
    # plain_text is shown literally by Slack: the brand stays as it is
    odd = slack.render_payload(hand_event(brand="R&D <team>"))
    assert odd["blocks"][0]["text"]["text"] == "🔴 CRISIS TRIGGERED · R&D <team> · critical"
    assert "R&amp;D &lt;team&gt;" in odd["text"]


def test_long_text_is_cut_with_an_ellipsis_within_the_limits() -> None:
    long_mention = {"id": "x:9", "text": "word & " * 3000, "author": "a" * 500, "reach": 1,
                    "url": "https://example.com/" + "p" * 5000, "source": "x"}
    event = hand_event(
        brand="b" * 400,
        summary="s&" * 4000,
        evidence={"terms": [{"term": "t<" * 300, "mentions": 1, "share": 0.1}] * 200,
                  "mentions": [long_mention] * 5, "sources": {f"src{i}": i for i in range(100)}},
        playbook=tuple("step & more " * 30 for _ in range(60)),
    )
    payload = slack.render_payload(event, "https://cw.example.com")
    assert_within_limits(payload)
    assert payload["blocks"][0]["text"]["text"].endswith("…")
    assert u16(payload["text"]) <= 3000 and payload["text"].endswith("…")
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    mentions = next(t for t in sections if t.startswith("*Representative mentions*"))
    quote = mentions.split("\n")[1]
    assert quote.startswith("> word &amp; word") and quote.endswith("…")
    assert u16(quote) <= 2 + slack.MAX_MENTION_TEXT
    assert all(t.endswith("…") for t in sections[:1])  # the summary
    assert any(t.startswith("*First steps*") and t.endswith("…") for t in sections)
    assert any(t.startswith("*What people") and t.endswith("…") for t in sections)


def test_cutting_never_splits_an_entity_or_a_link() -> None:
    for n in range(2990, 3010):
        text = "x" * n + " &amp; <https://example.com/abc|link> " + "&lt;" * 50
        cut = slack.fit_mrkdwn(text, 3000)
        assert u16(cut) <= 3000 and cut.endswith("…")
        assert re.sub(r"&(amp|lt|gt);", "", cut).count("&") == 0
        assert cut.count("<") == cut.count(">")
    assert slack.escape_clip("<" * 10, 9) == "&lt;&lt;…"  # 9 units, no half entity
    assert slack.escape_clip("<" * 10, 8) == "&lt;…"
    assert slack.clip_plain("😀" * 100, 150) == "😀" * 74 + "…"  # emoji are two UTF-16 units


# --- delivery ---------------------------------------------------------------------------------------

def test_a_volume_notice_is_titled_as_one(receiver: HttpReceiver) -> None:
    event = hand_event(Status.NOTICE, severity=Severity.INFO, id="acme:volume:20261124T0202Z:0:notice",
                       crisis_id="acme:volume:20261124T0202Z", summary="Volume notice for acme: 12x the usual.",
                       evidence={}, playbook=())
    assert slack.title(event) == "🔵 VOLUME NOTICE · acme · info"
    notifier(receiver.url).send(event)
    payload = receiver.requests[0].json()
    assert_within_limits(payload)
    assert payload["text"].startswith("🔵 VOLUME NOTICE · acme · info: Volume notice for acme")
    assert "First steps" not in json.dumps(payload)  # nothing to do


def test_ok_is_delivered(receiver: HttpReceiver) -> None:
    receiver.answer(200, body=b"ok")
    notifier(receiver.url).send(hand_event())
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status, body", [(500, b"rollup_error"), (502, b""), (503, b"busy"), (408, b"")])
def test_server_errors_are_retryable(receiver: HttpReceiver, status: int, body: bytes) -> None:
    receiver.answer(status, body=body)
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is True and err.value.retry_after_s is None
    assert f"HTTP {status}" in str(err.value)


@pytest.mark.parametrize("status, body, hint", [
    (400, b"invalid_payload", "could not parse"),
    (403, b"action_prohibited", "does not allow"),
    (404, b"no_service", "removed or disabled"),
    (404, b"channel_not_found", "no longer exists"),
    (410, b"channel_is_archived", "archived"),
    (401, b"", ""),
])
def test_refusals_are_not_retryable(receiver: HttpReceiver, status: int, body: bytes, hint: str) -> None:
    receiver.answer(status, body=body)
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is False
    assert f"HTTP {status}" in str(err.value) and body.decode() in str(err.value) and hint in str(err.value)


def test_429_passes_retry_after(receiver: HttpReceiver) -> None:
    receiver.answer(429, {"Retry-After": "7"}, b"rate_limited")
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is True and err.value.retry_after_s == 7.0

    receiver.answer(429, {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)})
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is True and 100 < (err.value.retry_after_s or 0) <= 121

    receiver.answer(429)
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is True and err.value.retry_after_s is None


def test_redirects_are_not_followed(receiver: HttpReceiver) -> None:
    receiver.answer(302, {"Location": "http://127.0.0.1:9/elsewhere"})
    with pytest.raises(NotifierError) as err:
        notifier(receiver.url).send(hand_event())
    assert err.value.retryable is False and len(receiver.requests) == 1


def test_a_silent_receiver_times_out_as_retryable() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}{SECRET_PATH}"
        with pytest.raises(NotifierError) as err:
            notifier(url, timeout_s=0.2).send(hand_event())
    assert err.value.retryable is True and "no answer within 0.2 s" in str(err.value)
    assert SECRET_MARK not in str(err.value)


def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(NotifierError) as err:
        notifier(f"http://127.0.0.1:{port}{SECRET_PATH}").send(hand_event())
    assert err.value.retryable is True and SECRET_MARK not in str(err.value)


def test_the_secret_appears_nowhere(receiver: HttpReceiver) -> None:
    n = notifier(receiver.url, link_base="https://cw.example.com")
    assert SECRET_MARK not in repr(n) and SECRET_MARK not in str(n)
    receiver.answer(400, body=f"invalid_payload for {SECRET_PATH}".encode())  # a receiver echoing the URL
    with pytest.raises(NotifierError) as err:
        n.send(hand_event())
    assert SECRET_MARK not in str(err.value) and err.value.__cause__ is None
    assert SECRET_MARK not in json.dumps(n.payload(hand_event()))
    assert SECRET_MARK.encode() not in receiver.requests[0].body


# --- configuration ----------------------------------------------------------------------------------

def build(table: dict[str, Any], env: dict[str, str] | None = None) -> slack.SlackNotifier:
    return slack.build({"type": "slack", "name": "comms", **table}, "receivers[2]",
                       {"SLACK_URL": "https://hooks.slack.com" + SECRET_PATH} if env is None else env)


def test_a_valid_table() -> None:
    n = build({"webhook_url_env": "SLACK_URL", "link_base": "https://cw.example.com", "timeout_s": 3})
    assert (n.name, n.link_base, n.timeout_s) == ("comms", "https://cw.example.com", 3.0)
    assert build({"webhook_url_env": "SLACK_URL"}).timeout_s == 10.0


@pytest.mark.parametrize("table, env, words", [
    ({}, None, ["receivers[2].webhook_url_env is required"]),
    ({"webhook_url_env": "NOPE"}, None, ["receivers[2].webhook_url_env", "NOPE is not set"]),
    ({"webhook_url_env": "SLACK_URL"}, {"SLACK_URL": "hooks.slack.com" + SECRET_PATH},
     ["receivers[2].webhook_url_env", "http(s) URL"]),
    ({"webhook_url_env": "SLACK_URL", "webhook_url": "https://hooks.slack.com/x"}, None,
     ["receivers[2].webhook_url", "environment variable", "webhook_url_env"]),
    ({"webhook_url_env": "SLACK_URL", "timeout": 5}, None, ["receivers[2].timeout", "did you mean 'timeout_s'"]),
    ({"webhook_url_env": "SLACK_URL", "channel": "#x"}, None, ["receivers[2].channel", "known keys"]),
    ({"webhook_url_env": "SLACK_URL", "timeout_s": 0}, None, ["receivers[2].timeout_s"]),
    ({"webhook_url_env": "SLACK_URL", "timeout_s": "10"}, None, ["receivers[2].timeout_s"]),
    ({"webhook_url_env": "SLACK_URL", "timeout_s": True}, None, ["receivers[2].timeout_s"]),
    ({"webhook_url_env": "SLACK_URL", "link_base": "cw.example.com"}, None, ["receivers[2].link_base"]),
    ({"webhook_url_env": "SLACK_URL", "link_base": 3}, None, ["receivers[2].link_base"]),
])
def test_config_errors_name_the_key(table: dict[str, Any], env: dict[str, str] | None, words: list[str]) -> None:
    with pytest.raises(NotifierConfigError) as err:
        build(table, env)
    for w in words:
        assert w in str(err.value)
    assert SECRET_MARK not in str(err.value)


def test_the_registry_builds_it() -> None:
    from listener.notifiers.registry import build_notifier

    n = build_notifier({"type": "slack", "name": "comms", "webhook_url_env": "SLACK_URL"}, 0,
                       {"SLACK_URL": "https://hooks.slack.com" + SECRET_PATH})
    assert isinstance(n, slack.SlackNotifier) and n.name == "comms"


def test_the_on_call_view_is_shown_first_and_notices_name_themselves(demo_events: list[dict[str, Any]]) -> None:
    event = {**demo_events[0], "oncall": {"ack_target_minutes": 15, "ack_due": "2026-11-24T10:15:00Z",
                                          "ack_command": "crisiswatch ack acme:x --by NAME"},
             "actions": [{"name": "pause-posts", "step": "do", "outcome": "failed", "error": "HTTP 401 <b>"}],
             "notice": {"id": "acme:x/acme/level-2", "kind": "escalation", "level": 2,
                        "text": "Not acknowledged within 15 min: escalated to level 2."}}
    payload = slack.render_payload(event)
    assert payload["blocks"][0]["text"]["text"].startswith("🟠 CRISIS ESCALATED TO LEVEL 2 · acme") or \
        "CRISIS ESCALATED TO LEVEL 2 · acme" in payload["blocks"][0]["text"]["text"]
    oncall = payload["blocks"][2]["text"]["text"].split("\n")
    assert oncall == ["*Not acknowledged within 15 min: escalated to level 2.*",
                      "Acknowledge by 10:15 UTC (target: 15 min) — run: crisiswatch ack acme:x --by NAME",
                      "Action pause-posts: FAILED (HTTP 401 &lt;b&gt;) — do it by hand"]
    assert "acme:x/acme/level-2" in payload["blocks"][-1]["elements"][0]["text"]
    acked = {**event, "notice": {"kind": "acknowledged", "text": "Acknowledged by Ana after 6 min."},
             "oncall": {"acknowledged_by": "Ana", "acknowledged_at": "2026-11-24T10:06:00Z", "ack_minutes": 6.0}}
    assert "CRISIS ACKNOWLEDGED" in slack.render_payload(acked)["blocks"][0]["text"]["text"]
    assert "Acknowledged by Ana at 10:06 UTC (6.0 min after the first alert)." in \
        slack.render_payload(acked)["blocks"][2]["text"]["text"]
