"""Slack: one Block Kit message per alert event, posted to an incoming webhook.

Why a rich message: the on-call person reads the alert in Slack and must know
within seconds what is happening (numbers against the baseline), why (the
terms people use, a few representative mentions) and what to do first (the
playbook as a numbered checklist), and how to find the crisis again (its id,
optionally a link).

The request (Slack "Sending messages using incoming webhooks",
api.slack.com/messaging/webhooks): ``POST <webhook URL>`` with
``Content-Type: application/json`` and a body ``{"text": …, "blocks": […]}``.
``text`` is the fallback shown in notifications and screen readers; the
blocks are what the channel shows:

* ``header`` (plain_text ≤ 150 chars): emoji · status · brand · severity;
* ``section`` (mrkdwn): the summary;
* ``section`` with ``fields`` (≤ 10, each ≤ 2000 chars): the numbers against
  the baseline — negatives, negative share, ratio, window, negative reach…;
* ``section`` "What people are upset about": the over-represented terms;
* ``section``: up to three representative mentions, quoted with ``>`` and
  their author, source, reach and link (not for a resolved crisis);
* ``section``: the playbook as a numbered checklist (triggered and
  escalated), how long it has been going on (updated) or how long it lasted
  (resolved);
* ``section`` with a mrkdwn link ``<link_base>/<crisis id>`` when
  ``link_base`` is configured — a link, not a button: a URL button is an
  interactive element and Slack shows a warning on every click unless the
  app acknowledges ``block_actions`` at an interactivity request URL;
* ``context``: the crisis id, the alert id and the event time.

Limits followed (Block Kit reference, docs.slack.dev/reference/block-kit:
section, header and context blocks): section text ≤ 3000 characters, header
≤ 150, fields ≤ 10 of ≤ 2000 each, ≤ 50 blocks per message.  Longer text is
cut with "…", never inside an HTML entity or a ``<…>`` link; lengths are
counted in UTF-16 code units, which is never less than Slack's count.

Escaping (Slack "Formatting text for app surfaces", section "Escaping text"):
``&``, ``<`` and ``>`` are Slack's control characters in mrkdwn text, so every
piece of text we did not write ourselves — the mentions' texts and authors,
terms, sources, the brand, the summary — has them replaced by ``&amp;``,
``&lt;``, ``&gt;``, and only those three.  Without it a mention containing
``<!channel>`` or ``<@U123>`` would ping people.  plain_text (the header) is
shown literally by Slack and is not escaped.

Answers (Slack changelog "Improving error conditions for Incoming Webhooks",
2016-05-17, and the webhooks guide): 200 with ``ok`` is delivered; 400
``invalid_payload``/``user_not_found``/``no_text``, 403
``action_prohibited``, 404 ``channel_not_found``/``no_service``, 410
``channel_is_archived`` are refused for good (``retryable=False``) with a
hint; 429 is retryable at its ``Retry-After`` (Slack's rate limit for posting
is about one message per second); 408, 5xx (``rollup_error``), timeouts and
network errors are retryable.  Redirects are not followed.

Idempotency: Slack incoming webhooks have no idempotency or de-duplication
key.  The outbox records a delivery per (alert id, receiver) and does not
send a delivered one again; the only duplicate left is a crash between
Slack's "ok" and that record, and then the repeated message carries the same
alert id in its context line, so people can tell it is the same alert.

The webhook URL is the secret (it alone allows posting): it comes from the
environment variable named by ``webhook_url_env`` and never appears in
exceptions, logs, ``repr()`` or the payload.

Configuration (a ``[[receivers]]`` table)::

    [[receivers]]
    type = "slack"
    name = "comms-slack"
    webhook_url_env = "CRISISWATCH_SLACK_WEBHOOK"   # required
    link_base = "https://crisiswatch.example.com/crises"   # optional
    timeout_s = 10                                  # optional

``python -m listener.notifiers.slack`` prints the payload sent for the demo's
first (triggered) event: ``docs/slack-message-example.json``.
"""

from __future__ import annotations

import difflib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from . import oncall_text
from .base import NotifierConfigError, secret
from .http import Redactor, check_answer, http_post, url_secrets

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_TEXT = 2000
MAX_FALLBACK_TEXT = 3000
MAX_MENTIONS = 3
MAX_MENTION_TEXT = 700
"""Each quoted mention gets at most this much, so three fit in one section."""

KEYS = ("type", "name", "webhook_url_env", "link_base", "timeout_s")
DEFAULT_TIMEOUT_S = 10.0

_TITLE = {
    "triggered": "CRISIS TRIGGERED",
    "escalated": "CRISIS ESCALATED",
    "updated": "CRISIS UPDATE",
    "resolved": "CRISIS RESOLVED",
    "notice": "VOLUME NOTICE",
}
_SEVERITY_EMOJI = {"info": "🔵", "warning": "🟡", "error": "🟠", "critical": "🔴"}
_RESOLVED_EMOJI = "🟢"

_REFUSALS = {
    "invalid_payload": "Slack could not parse the message (a bug in crisiswatch: please report it)",
    "no_text": "Slack found no text in the message (a bug in crisiswatch: please report it)",
    "invalid_blocks": "Slack rejected the blocks (a bug in crisiswatch: please report it)",
    "user_not_found": "the webhook's user does not exist: create a new webhook",
    "action_prohibited": "the workspace does not allow this webhook to post here: ask a Slack admin",
    "channel_not_found": "the webhook's channel no longer exists: create a new webhook for another channel",
    "channel_is_archived": "the webhook's channel is archived: unarchive it or create a new webhook",
    "no_service": "the webhook was removed or disabled: create a new one and update the environment variable",
    "no_team": "the webhook's workspace no longer exists: create a new webhook",
    "team_disabled": "the webhook's workspace is disabled",
    "posting_to_general_channel_denied": "only admins may post to this channel: pick another channel",
}


# --- text helpers -----------------------------------------------------------------------------------

def escape(text: object) -> str:
    """Escape Slack's three control characters — and only those — in text we did not write."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: an upper bound of what Slack counts."""
    return len(text.encode("utf-16-le")) // 2


def clip_plain(text: str, limit: int) -> str:
    """Cut plain text to ``limit`` with an ellipsis."""
    if slack_len(text) <= limit:
        return text
    out: list[str] = []
    n = 0
    for ch in text:
        w = slack_len(ch)
        if n + w > limit - 1:
            break
        out.append(ch)
        n += w
    return "".join(out).rstrip() + "…"


def escape_clip(text: object, limit: int) -> str:
    """Escape user text and cut it to ``limit`` escaped characters, never inside an entity."""
    escaped = escape(text)
    if slack_len(escaped) <= limit:
        return escaped
    out: list[str] = []
    n = 0
    for ch in str(text):
        piece = escape(ch)
        w = slack_len(piece)
        if n + w > limit - 1:
            break
        out.append(piece)
        n += w
    return "".join(out).rstrip() + "…"


def fit_mrkdwn(text: str, limit: int) -> str:
    """Cut already-escaped mrkdwn to ``limit``, backing off from a cut entity or ``<…>`` link."""
    if slack_len(text) <= limit:
        return text
    cut = clip_plain(text, limit)[:-1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut.rstrip() + "…"


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def link(url: object, label: str) -> str | None:
    """A mrkdwn link ``<url|label>`` (label already escaped), or None for a URL that is not http(s)."""
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        return None
    u = one_line(url).replace("|", "%7C")
    if slack_len(u) > 2000:
        return None
    return f"<{escape(u)}|{label}>"


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:,.1f}"


def _hhmm(stamp: object) -> str | None:
    """``2026-11-24T01:55:00Z`` → ``01:55``."""
    if isinstance(stamp, str) and len(stamp) >= 16 and stamp[10] == "T":
        return stamp[11:16]
    return None


def _day_hhmm(stamp: object) -> str:
    if isinstance(stamp, str) and len(stamp) >= 16 and stamp[10] == "T":
        return f"{stamp[:10]} {stamp[11:16]} UTC"
    return escape(stamp)


# --- the message ------------------------------------------------------------------------------------

def title(event: Mapping[str, Any]) -> str:
    """``🔴 CRISIS TRIGGERED · acme · critical`` (plain text, not escaped)."""
    status = str(event.get("status", ""))
    severity = str(event.get("severity", ""))
    emoji = _RESOLVED_EMOJI if status == "resolved" else _SEVERITY_EMOJI.get(severity, "⚪")
    label = oncall_text.headline(event) or _TITLE.get(status, "CRISIS " + status.upper())
    return f"{emoji} {label} · {one_line(event.get('brand', ''))} · {severity}"


def _stat_fields(event: Mapping[str, Any]) -> list[str]:
    s = event.get("stats") or {}
    if not isinstance(s, Mapping):
        return []
    fields: list[str] = []
    window = _num(s.get("window_minutes"))
    win = f" ({_fmt(window)} min)" if window is not None else ""
    neg, base_neg = _num(s.get("negatives")), _num(s.get("baseline_negatives"))
    if neg is not None:
        usual = f" vs {_fmt(base_neg)} usual" if base_neg is not None else ""
        fields.append(f"*Negative mentions{win}*\n{_fmt(neg)}{usual}")
    share, base_share = _num(s.get("negative_share")), _num(s.get("baseline_negative_share"))
    if share is not None:
        usual = f" vs {base_share:.0%} usual" if base_share is not None else ""
        fields.append(f"*Negative share*\n{share:.0%}{usual}")
    ratio = _num(s.get("negative_ratio"))
    if ratio is not None:
        voices = _num(s.get("negative_voices"))
        of = f" ({voices:,.0f} independent voices)" if voices is not None else ""
        fields.append(f"*Ratio*\n{ratio:,.1f}× the usual negatives{of}")
    if window is not None:
        start, end = _hhmm(s.get("window_start")), _hhmm(s.get("window_end"))
        span = f" · {start}–{end} UTC" if start and end else ""
        fields.append(f"*Window*\n{_fmt(window)} min{span}")
    reach = _num(s.get("negative_reach"))
    if reach is not None:
        fields.append(f"*Negative reach*\n{_fmt(reach)}")
    mentions, base_mentions = _num(s.get("mentions")), _num(s.get("baseline_mentions"))
    if mentions is not None:
        usual = f" vs {_fmt(base_mentions)} usual" if base_mentions is not None else ""
        fields.append(f"*All mentions{win}*\n{_fmt(mentions)}{usual}")
    sources = (event.get("evidence") or {}).get("sources") if isinstance(event.get("evidence"), Mapping) else None
    if isinstance(sources, Mapping) and sources:
        fields.append("*Sources*\n" + " · ".join(f"{escape(one_line(k))} {escape(v)}" for k, v in sources.items()))
    started = event.get("started_at")
    if started:
        duration = _num(s.get("duration_minutes"))
        since = f" ({_fmt(duration)} min)" if duration is not None else ""
        fields.append(f"*Crisis since*\n{_day_hhmm(started)}{since}")
    return [fit_mrkdwn(f, MAX_FIELD_TEXT) for f in fields[:MAX_FIELDS]]


def _terms_text(terms: list[Any]) -> str | None:
    lines = []
    for t in terms:
        if not isinstance(t, Mapping) or not t.get("term"):
            continue
        line = f"• “{escape_clip(one_line(t['term']), 200)}”"
        n, share = _num(t.get("mentions")), _num(t.get("share"))
        if n is not None:
            line += f" — in {_fmt(n)} negative mentions"
            if share is not None:
                line += f" ({share:.0%})"
        lines.append(line)
    if not lines:
        return None
    return fit_mrkdwn("*What people are upset about*\n" + "\n".join(lines), MAX_SECTION_TEXT)


def _mention_text(m: Mapping[str, Any]) -> str:
    quote = "> " + escape_clip(one_line(m.get("text", "")), MAX_MENTION_TEXT)
    meta = [f"*{escape_clip(one_line(m.get('author') or '?'), 100)}*"]
    if m.get("source"):
        meta.append(escape_clip(one_line(m["source"]), 50))
    reach = _num(m.get("reach"))
    if reach is not None:
        meta.append(f"reach {_fmt(reach)}")
    url = link(m.get("url"), "link")
    if url:
        meta.append(url)
    return quote + "\n— " + " · ".join(meta)


def _mentions_text(mentions: list[Any]) -> str | None:
    parts = [_mention_text(m) for m in mentions if isinstance(m, Mapping) and m.get("text")][:MAX_MENTIONS]
    if not parts:
        return None
    text = "*Representative mentions*\n" + "\n\n".join(parts)
    while slack_len(text) > MAX_SECTION_TEXT and len(parts) > 1:
        parts.pop()
        text = "*Representative mentions*\n" + "\n\n".join(parts)
    return fit_mrkdwn(text, MAX_SECTION_TEXT)


def _next_steps_text(event: Mapping[str, Any]) -> str | None:
    status = event.get("status")
    s = event.get("stats") if isinstance(event.get("stats"), Mapping) else {}
    duration = _num(s.get("duration_minutes"))
    if status == "resolved":
        lasted = f" after {_fmt(duration)} min" if duration is not None else ""
        return f"✅ *Resolved{lasted}* — the crisis began {_day_hhmm(event.get('started_at'))}."
    if status == "updated":
        if duration is None:
            return None
        return f"⏱ *Ongoing for {_fmt(duration)} min* — keep acknowledging and updating until it quiets down."
    steps = [one_line(p) for p in event.get("playbook") or [] if str(p).strip()]
    if not steps:
        return None
    lines = [f"{i}. {escape_clip(step, 500)}" for i, step in enumerate(steps, 1)]
    return fit_mrkdwn("*First steps*\n" + "\n".join(lines), MAX_SECTION_TEXT)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit_mrkdwn(text, MAX_SECTION_TEXT)}}


def crisis_url(link_base: str, crisis_id: object) -> str:
    return f"{link_base.rstrip('/')}/{urllib.parse.quote(str(crisis_id), safe=':')}"


def render_payload(event: Mapping[str, Any], link_base: str | None = None) -> dict[str, Any]:
    """The JSON body posted to the webhook for one alert event (``AlertEvent.to_dict()`` form)."""
    head = title(event)
    summary = one_line(event.get("summary", ""))
    fallback = fit_mrkdwn(f"{escape(head)}: {escape(summary)}" if summary else escape(head), MAX_FALLBACK_TEXT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip_plain(head, MAX_HEADER_TEXT), "emoji": True}},
    ]
    if summary:
        blocks.append(_section(escape(summary)))
    oncall = oncall_text.lines(event)
    if oncall:
        blocks.append(_section("\n".join(f"*{escape(one_line(x))}*" if i == 0 else escape(one_line(x))
                                         for i, x in enumerate(oncall))))
    fields = _stat_fields(event)
    if fields:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    evidence = event.get("evidence") if isinstance(event.get("evidence"), Mapping) else {}
    terms = _terms_text(list(evidence.get("terms") or []))
    if terms:
        blocks.append(_section(terms))
    if event.get("status") != "resolved":
        mentions = _mentions_text(list(evidence.get("mentions") or []))
        if mentions:
            blocks.append(_section(mentions))
    steps = _next_steps_text(event)
    if steps:
        blocks.append(_section(steps))
    cid = event.get("crisis_id")
    if link_base and cid:
        blocks.append(_section(f"🔗 <{escape(crisis_url(link_base, cid))}|Open the crisis in crisiswatch>"))
    context = " · ".join(
        f"{label} `{escape_clip(one_line(value), 300)}`"
        for label, value in (("crisis", cid), ("alert", oncall_text.notice_id(event)), ("event time", event.get("at")))
        if value
    )
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                        "text": fit_mrkdwn(context, MAX_CONTEXT_TEXT)}]})
    return {"text": fallback, "blocks": blocks[:MAX_BLOCKS]}


# --- delivery ---------------------------------------------------------------------------------------

class SlackNotifier:
    """Posts one Block Kit message per alert event to a Slack incoming webhook."""

    def __init__(self, name: str, webhook_url: str, link_base: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.name = name
        self.link_base = link_base
        self.timeout_s = timeout_s
        self.__url = webhook_url
        self._redact = Redactor(url_secrets(webhook_url))

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r}, link_base={self.link_base!r}, timeout_s={self.timeout_s!r})"

    def payload(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return render_payload(event, self.link_base)

    def send(self, event: Mapping[str, Any]) -> None:
        body = json.dumps(self.payload(event), ensure_ascii=False).encode("utf-8")
        what = f"slack receiver {self.name!r}"
        answer = http_post(self.__url, body, {"Content-Type": "application/json; charset=utf-8"},
                           self.timeout_s, what, self._redact)
        said = one_line(answer.body[:512].decode("utf-8", "replace"))[:200]
        hint = _REFUSALS.get(said)
        check_answer(answer, what, self._redact, time.time(), detail=f"{said}: {hint}" if hint else said)


def build(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> SlackNotifier:
    """A :class:`SlackNotifier` from a ``[[receivers]]`` table; raises NotifierConfigError naming the key."""
    for key in table:
        if key not in KEYS:
            if key in ("webhook_url", "url", "webhook"):
                raise NotifierConfigError(
                    f"unknown key '{where}.{key}': the webhook URL is a secret — put it in an environment "
                    f"variable and name that variable in {where}.webhook_url_env")
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(KEYS)}"
            raise NotifierConfigError(f"unknown key '{where}.{key}' for a slack receiver: {hint}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NotifierConfigError(f"{where}.name is required: it names the receiver in the outbox and the logs")
    url = secret(table, "webhook_url_env", where, env).strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise NotifierConfigError(
            f"{where}.webhook_url_env: the environment variable {table['webhook_url_env']} does not hold an "
            "http(s) URL: it must hold the Slack incoming webhook URL (https://hooks.slack.com/services/…)")
    link_base = table.get("link_base")
    if link_base is not None:
        if (not isinstance(link_base, str)
                or urllib.parse.urlsplit(link_base).scheme not in ("https", "http")
                or not urllib.parse.urlsplit(link_base).netloc):
            raise NotifierConfigError(
                f"{where}.link_base must be an http(s) URL such as \"https://crisiswatch.example.com/crises\" "
                "(the crisis id is appended), or left out")
        if any(c in link_base for c in "|<> \t\n"):
            raise NotifierConfigError(f"{where}.link_base must not contain spaces, '|', '<' or '>'")
    timeout = table.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise NotifierConfigError(f"{where}.timeout_s must be a number of seconds between 0 and 300, e.g. 10")
    return SlackNotifier(name=name, webhook_url=url, link_base=link_base or None, timeout_s=float(timeout))


EXAMPLE_LINK_BASE = "https://crisiswatch.example.com/crises"


def _plus_minutes(stamp: str, minutes: int) -> str:
    from detectors.events import from_iso, iso

    return iso(from_iso(stamp) + 60 * minutes)


def example_json(event: Mapping[str, Any] | None = None) -> str:
    """The payload for the demo's first (triggered) event as the notify role sends it (acknowledgement
    due, scheduled posts paused), pretty-printed: the example in the docs."""
    if event is None:
        from connectors.simulator import demo_simulation
        from listener.offline import run_items
        from listener.pipeline import PipelineSettings

        event = run_items(demo_simulation().items(), PipelineSettings()).events[0].to_dict()
    event = oncall_text.example(event, first_seen=_plus_minutes(str(event["at"]), 15))
    return json.dumps(render_payload(event, EXAMPLE_LINK_BASE), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(example_json())
