"""The on-call lines every human-facing notifier shows, written once.

The on-call engine adds three things to an alert event's payload
(:mod:`listener.oncall`): ``notice`` (why this message: the transition
itself, a reminder, an escalation, an acknowledgement), ``oncall`` (the
response-time promise — who acknowledged and when, or by when someone must —
and the command that acknowledges) and ``actions`` (e.g. scheduled posts
paused, or that pausing failed and must be done by hand).  Slack, e-mail
and PagerDuty render them from these plain-text helpers; each escapes the
result for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_KIND_TITLE = {"repeat": "CRISIS REMINDER", "acknowledged": "CRISIS ACKNOWLEDGED"}


def notice_id(event: Mapping[str, Any]) -> str:
    """The id of this notification: the alert id for a transition, a derived one for a reminder,
    escalation or acknowledgement (so a receiver de-duplicating on it still shows those)."""
    notice = event.get("notice")
    if isinstance(notice, Mapping) and notice.get("id"):
        return str(notice["id"])
    return str(event.get("id") or "")


def lines(event: Mapping[str, Any]) -> list[str]:
    """All on-call lines, in reading order."""
    return [x for x in (notice_line(event), oncall_line(event)) if x] + action_lines(event)


def headline(event: Mapping[str, Any]) -> str | None:
    """The title for a notice that is not the transition itself (None: the status names it)."""
    notice = event.get("notice")
    if not isinstance(notice, Mapping):
        return None
    kind = notice.get("kind")
    if kind == "escalation":
        return f"CRISIS ESCALATED TO LEVEL {notice.get('level')}"
    return _KIND_TITLE.get(str(kind))


def notice_line(event: Mapping[str, Any]) -> str | None:
    notice = event.get("notice")
    if isinstance(notice, Mapping) and notice.get("text"):
        return str(notice["text"])
    return None


def _hhmm(stamp: Any) -> str:
    s = str(stamp or "")
    return f"{s[11:16]} UTC" if len(s) >= 16 and s[10] == "T" else s


def oncall_line(event: Mapping[str, Any]) -> str | None:
    """Who has it, or by when someone must take it and how."""
    oc = event.get("oncall")
    if not isinstance(oc, Mapping) or event.get("status") == "resolved":
        return None
    if oc.get("acknowledged_by"):
        return f"Acknowledged by {oc['acknowledged_by']} at {_hhmm(oc.get('acknowledged_at'))} " \
               f"({oc.get('ack_minutes')} min after the first alert)."
    target = oc.get("ack_target_minutes")
    due = f" by {_hhmm(oc['ack_due'])}" if oc.get("ack_due") else ""
    return f"Acknowledge{due} (target: {target:g} min) — run: {oc.get('ack_command')}" \
        if isinstance(target, (int, float)) else None


def action_lines(event: Mapping[str, Any]) -> list[str]:
    out = []
    for a in event.get("actions") or []:
        if not isinstance(a, Mapping):
            continue
        step = " (undo)" if a.get("step") == "undo" else ""
        outcome = a.get("outcome")
        if outcome == "done":
            text = "done"
        elif outcome == "failed":
            text = f"FAILED ({a.get('error')}) — do it by hand"
        elif a.get("error"):
            text = f"not yet (last try: {a['error']}) — retrying"
        else:
            text = "pending"
        out.append(f"Action {a.get('name')}{step}: {text}")
    return out


def example(event: Mapping[str, Any], first_seen: str = "") -> dict[str, Any]:
    """``event`` as the notify role sends its first notice (for the rendered examples in the docs):
    level 1 of a route, the acknowledgement due, scheduled posts paused."""
    crisis = str(event.get("crisis_id"))
    return {
        **event,
        "notice": {"id": event.get("id"), "kind": "transition", "route": "acme-serious", "level": 1, "text": ""},
        "oncall": {"ack_target_minutes": 15, "ack_due": first_seen or str(event.get("at")),
                   "ack_command": f"crisiswatch ack {crisis} --by NAME"},
        "actions": [{"name": "pause-scheduled-posts", "step": "do", "outcome": "done", "attempts": 1,
                     "error": None}],
    }
