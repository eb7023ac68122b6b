"""PagerDuty: one alert — and so one incident — per crisis, via the Events API v2.

Documentation followed: PagerDuty developer docs, "Events API v2 Overview"
(response codes and retry logic, 512 KB size limit, PD-CEF fields), "Send an
Alert Event" (``POST https://events.pagerduty.com/v2/enqueue``, the parameter
table, alert de-duplication, event actions, ``links``) and "Events API Rate
Limits" (about 120 events a minute per integration key; 429 means "not
ingested, retry later, e.g. 30 s apart") — github.com/PagerDuty/developer-docs,
``docs/events-API-v2/``.

The event sent (every field checked by ``tests/listener/test_notifier_pagerduty.py``)::

    {"routing_key": <secret>, "event_action": "trigger" | "resolve",
     "dedup_key": <crisis id>,
     "payload": {"summary": <event summary, at most 1024 characters>,
                 "source": "crisiswatch:<brand>", "severity": <event severity>,
                 "timestamp": <event "at", ISO 8601>, "component": <brand>,
                 "group": "crisiswatch", "class": "social media crisis",
                 "custom_details": {status, alert_id, crisis_id, started_at, stats,
                                    terms, top_mentions, sources, playbook}},
     "links": [{"href": <mention url>, "text": "<source> · <author> (reach n): <text>"}, ...],
     "client": "crisiswatch", "client_url": <link_base>/<crisis id> (when link_base is set)}

Why these choices:

* ``dedup_key`` is the **crisis id**, not the alert id: PagerDuty applies
  every event with the same ``dedup_key`` (and routing key) to the alert that
  is still open for it, so one crisis is one incident from trigger to resolve.
  The key is also what makes delivery idempotent: the outbox may send a
  transition twice (a retry, a crash before it marked the delivery done) and
  the second copy lands on the same alert instead of paging again.
* triggered, escalated and updated are all ``trigger``: PagerDuty documents
  that a trigger for a key whose alert is open adds a trigger log entry to
  that alert rather than opening a new one, so the incident's timeline gets
  the new numbers, severity and evidence without a second page (and while
  someone has acknowledged it, PagerDuty sends no further notifications).
  If a responder resolved the incident by hand while the crisis goes on, the
  next escalation opens a new incident — on purpose: the crisis is not over.
  resolved is ``resolve`` (sent with the same payload, as Prometheus
  Alertmanager does; PagerDuty needs only routing key, action and key).
* severities map one to one (ours are PagerDuty's four), ``source`` names
  the brand so PagerDuty groups and routes per brand, and ``timestamp`` is
  the event time of the transition, not the time of sending.
* Answers: 2xx (202 ``{"status": "success", "dedup_key": ...}``) is done; 400
  "invalid event" is permanent (the message and ``errors`` are reported);
  429 and 5xx are retryable, 429 after ``Retry-After`` or 30 s; network errors
  and timeouts are retryable.

Configuration (a ``[[receivers]]`` table)::

    [[receivers]]
    type = "pagerduty"
    name = "pagerduty"                      # optional, defaults to "pagerduty"
    routing_key_env = "PAGERDUTY_ROUTING_KEY"  # env var: the 32-character integration key
    url = "https://events.pagerduty.com/v2/enqueue"  # optional (EU accounts: events.eu.pagerduty.com)
    link_base = "https://crisiswatch.example.com/crises"  # optional: client_url = <link_base>/<crisis id>
    timeout_s = 10

The routing key never appears in errors, logs or ``repr()``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .base import (
    DEFAULT_TIMEOUT_S,
    NotifierConfigError,
    NotifierError,
    options,
    secret,
    timeout_option,
)
from .oncall_text import lines as oncall_lines
from .http import Redactor, check_answer, check_http_url, destination, http_post

log = logging.getLogger(__name__)

ENDPOINT = "https://events.pagerduty.com/v2/enqueue"
ACTIONS = {"triggered": "trigger", "escalated": "trigger", "updated": "trigger", "resolved": "resolve"}
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
CLIENT = "crisiswatch"
GROUP = "crisiswatch"
CLASS = "social media crisis"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
MAX_EVENT_BYTES = 512 * 1024
MENTION_TEXT = 500
RATE_LIMIT_WAIT_S = 30.0


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dedup_key(crisis_id: str) -> str:
    """The crisis id, or (past PagerDuty's 255 characters) its start plus a hash, still one key per crisis."""
    if len(crisis_id) <= MAX_DEDUP_KEY:
        return crisis_id
    digest = hashlib.sha256(crisis_id.encode()).hexdigest()
    return crisis_id[: MAX_DEDUP_KEY - len(digest) - 1] + ":" + digest


def crisis_link(link_base: str, crisis_id: str) -> str:
    """``<link_base>/<crisis id>`` — the same link the Slack notifier builds from the same ``link_base``."""
    return f"{link_base.rstrip('/')}/{urllib.parse.quote(crisis_id, safe=':')}"


def _mention_link(m: Mapping[str, Any]) -> dict[str, str] | None:
    url = m.get("url")
    try:
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return None
    except ValueError:
        return None
    text = " ".join(str(m.get("text") or "").split())
    reach = m.get("reach")
    reach_s = f" (reach {reach:,})" if isinstance(reach, int) and not isinstance(reach, bool) else ""
    label = f"{m.get('source') or '?'} · {m.get('author') or '?'}{reach_s}: {text}"
    return {"href": url, "text": truncate(label, 200)}


def render(event: Mapping[str, Any], routing_key: str, link_base: str | None = None) -> dict[str, Any]:
    """The Events API v2 body for one alert event; NotifierError(retryable=False) if the event cannot be one."""
    status = event.get("status")
    action = ACTIONS.get(status) if isinstance(status, str) else None
    notice = event.get("notice") if isinstance(event.get("notice"), Mapping) else {}
    if notice.get("kind") == "acknowledged" and action == "trigger":
        action = "acknowledge"  # someone took it in crisiswatch: the incident stops paging too
    if action is None:
        raise NotifierError(f"event {event.get('id')!r} has status {status!r}, not one of {sorted(ACTIONS)}",
                            retryable=False)
    crisis_id = event.get("crisis_id")
    brand = event.get("brand")
    if not isinstance(crisis_id, str) or not crisis_id or not isinstance(brand, str) or not brand:
        raise NotifierError(f"event {event.get('id')!r} has no crisis_id or brand", retryable=False)
    severity = event.get("severity")
    if severity not in SEVERITIES:
        log.warning("event %s has severity %r; paging PagerDuty with 'error'", event.get("id"), severity)
        severity = "error"
    summary = str(event.get("summary") or f"crisiswatch: {status} crisis for {brand} ({severity})")
    evidence = event.get("evidence") or {}
    mentions = [m for m in (evidence.get("mentions") or []) if isinstance(m, Mapping)]
    details: dict[str, Any] = {
        "status": status,
        "alert_id": event.get("id"),
        "crisis_id": crisis_id,
        "started_at": event.get("started_at"),
        "stats": event.get("stats") or {},
        "terms": evidence.get("terms") or [],
        "top_mentions": [{**m, "text": truncate(" ".join(str(m.get("text") or "").split()), MENTION_TEXT)}
                         for m in mentions],
        "sources": evidence.get("sources") or {},
        "playbook": list(event.get("playbook") or []),
        **{k: event[k] for k in ("notice", "oncall", "actions") if event.get(k)},
    }
    if oncall_lines(event):
        details["on_call"] = oncall_lines(event)
    payload: dict[str, Any] = {
        "summary": truncate(summary, MAX_SUMMARY),
        "source": f"crisiswatch:{brand}",
        "severity": severity,
        "component": brand,
        "group": GROUP,
        "class": CLASS,
        "custom_details": details,
    }
    if event.get("at"):
        payload["timestamp"] = event["at"]
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(crisis_id),
        "payload": payload,
        "links": [link for link in map(_mention_link, mentions) if link],
        "client": CLIENT,
    }
    if link_base:
        body["client_url"] = crisis_link(link_base, crisis_id)
    return body


def encode(body: dict[str, Any]) -> bytes:
    """JSON bytes within PagerDuty's 512 KB: past it, the custom details are replaced by a note."""
    data = orjson.dumps(body)
    if len(data) <= MAX_EVENT_BYTES:
        return data
    details = body["payload"]["custom_details"]
    body["payload"]["custom_details"] = {
        "note": "details removed: the event exceeded PagerDuty's 512 KB limit; see crisiswatch for the evidence",
        **{k: details.get(k) for k in ("status", "alert_id", "crisis_id", "started_at")},
    }
    return orjson.dumps(body)


def _invalid_event(data: bytes) -> str | None:
    """PagerDuty's own explanation of a 400: ``message: error, error``."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    errors = doc.get("errors")
    parts = [str(doc.get("message") or doc.get("status") or "invalid event")]
    if isinstance(errors, list) and errors:
        parts.append(", ".join(map(str, errors)))
    return ": ".join(parts)


class PagerDutyNotifier:
    """Sends alert events to the Events API v2; see the module docstring for the mapping."""

    def __init__(self, name: str, routing_key: str, url: str = ENDPOINT, link_base: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.url = url
        self.link_base = link_base
        self.timeout_s = timeout_s
        self.destination = destination(check_http_url(url, f"the url of PagerDuty receiver {name!r}"))
        self._routing_key = routing_key
        self._clock = clock
        self._redact = Redactor([routing_key])

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(name={self.name!r}, destination={self.destination!r})"

    def send(self, event: Mapping[str, Any]) -> None:
        what = f"PagerDuty {self.name!r} ({self.destination})"
        if event.get("status") == "notice":
            # PagerDuty pages people; a notice (a volume spike, not a crisis) is not a page, and an incident
            # opened for it would never be resolved
            log.info("%s: notice %s not sent (PagerDuty receives crises only)", what, event.get("id"))
            return
        try:
            body = encode(render(event, self._routing_key, self.link_base))
        except NotifierError as err:
            raise NotifierError(f"{what}: {err}", retryable=False) from None
        answer = http_post(self.url, body, {"Content-Type": "application/json"}, self.timeout_s, what,
                           self._redact)
        detail = _invalid_event(answer.body) if answer.status == 400 else None
        check_answer(answer, what, self._redact, self._clock(), default_retry_after_s=RATE_LIMIT_WAIT_S,
                     detail=detail)
        log.debug("%s accepted %s (HTTP %d)", what, event.get("id"), answer.status)


def build(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> PagerDutyNotifier:
    """The notifier for a ``[[receivers]]`` table with ``type = "pagerduty"``."""
    name, opts = options(table, where, "pagerduty",
                         {"routing_key_env": str, "url": str, "link_base": str, "timeout_s": (int, float)},
                         required=("routing_key_env",))
    routing_key = secret(table, "routing_key_env", where, env).strip()
    if len(routing_key) != 32 or not routing_key.isascii() or not routing_key.isalnum():
        raise NotifierConfigError(f"{where}.routing_key_env: ${opts['routing_key_env']} must hold the "
                                  "32-character Integration Key of an Events API v2 integration (service → "
                                  "Integrations in PagerDuty)")
    url = opts.get("url", ENDPOINT).strip()
    check_http_url(url, f"{where}.url")
    link_base = opts.get("link_base")
    if link_base is not None:
        link_base = link_base.strip()
        check_http_url(link_base, f"{where}.link_base")
    return PagerDutyNotifier(name, routing_key, url, link_base or None, timeout_option(opts, where))
