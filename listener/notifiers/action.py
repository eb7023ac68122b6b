"""Actions: an HTTP call fired when a crisis triggers, and its undo when it resolves.

Why: carrying on with planned posts during a crisis pours fuel on the fire
(a cheerful promo scheduled for 3 pm lands in the middle of a data-breach
storm).  The usual fix is a human remembering to pause the scheduling tool;
an action does it within seconds of the trigger and undoes it when the
crisis is over.  Any tool with an HTTP API works (Buffer, Hootsuite, Sprout
Social, an internal scheduler): the request is a template.

An action is delivered through the outbox like a notification (receiver
``action:<name>``): written before it is attempted, retried with backoff,
marked ``dead`` if refused — and dispatched *before* the notifications of
the same round, whose payload then carries its outcome (``actions`` in the
on-call view), so the alert says "scheduled posts paused" or "pausing failed:
pause them by hand".  The undo is written when the crisis resolves and, like
every notice of a crisis, waits until the pause is no longer pending.

Configuration (an ``[[actions]]`` table)::

    [[actions]]
    name = "pause-scheduled-posts"
    brands = ["acme"]                      # optional: every brand
    min_severity = "warning"               # optional: every severity
    method = "POST"                        # default POST
    url = "https://scheduler.example.com/api/brands/$brand/pause"   # or url_env = "VAR" (a secret URL)
    body = '{"reason": "crisis $crisis_id ($severity)", "until": "resolved"}'
    token_env = "SCHEDULER_TOKEN"          # optional: sent as "Authorization: Bearer <token>"
    headers = { "X-Team" = "comms" }       # optional, not secret
    undo_method = "POST"                   # default: method
    undo_url = "https://scheduler.example.com/api/brands/$brand/resume"   # or undo_url_env; none = no undo
    undo_body = '{"reason": "crisis $crisis_id resolved"}'
    timeout_s = 10

Templates use ``$name`` / ``${name}`` (Python ``string.Template``) with
``brand``, ``crisis_id``, ``alert_id``, ``severity``, ``status``,
``started_at`` and ``summary``; values are JSON-escaped in a body and
percent-encoded in a URL, so a brand name can break neither.  Without
``body`` the request carries the alert event's JSON.  A 2xx answer is done;
5xx, 408 and 429 are retried; other answers are refused for good.
"""

from __future__ import annotations

import json
import logging
import string
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from detectors import AlertEvent, Severity

from .base import NotifierConfigError, options, secret, timeout_option
from .http import Redactor, check_answer, check_http_url, destination, http_post, url_secrets

log = logging.getLogger(__name__)

PREFIX = "action:"
FIELDS = ("brand", "crisis_id", "alert_id", "severity", "status", "started_at", "summary")
METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")


def _values(event: Mapping[str, Any]) -> dict[str, str]:
    v = {k: str(event.get(k) or "") for k in FIELDS if k != "alert_id"}
    v["alert_id"] = str(event.get("id") or "")
    return v


class Request:
    """One templated HTTP call (the action or its undo)."""

    def __init__(self, method: str, url: str, body: str | None, where: str) -> None:
        self.method = method
        self.url = string.Template(url)
        self.body = string.Template(body) if body is not None else None
        for t, key in ((self.url, "url"), (self.body, "body")):
            if t is None:
                continue
            unknown = [n for n in t.get_identifiers() if n not in FIELDS]
            if not t.is_valid() or unknown:
                raise NotifierConfigError(f"{where}: the {key} template uses "
                                          f"{'$' + unknown[0] if unknown else 'a bad $'}; the fields are "
                                          f"{', '.join('$' + f for f in FIELDS)} (write $$ for a dollar sign)")
        parts = check_http_url(self.url.safe_substitute(dict.fromkeys(FIELDS, "x")), f"{where}: the URL")
        self.destination = destination(parts)

    def render(self, event: Mapping[str, Any]) -> tuple[str, bytes | None]:
        values = _values(event)
        url = self.url.substitute({k: urllib.parse.quote(v, safe="") for k, v in values.items()})
        if self.body is None:
            return url, orjson.dumps(dict(event))
        return url, self.body.substitute({k: json.dumps(v)[1:-1] for k, v in values.items()}).encode()


class HttpAction:
    """The notifier behind ``action:<name>``: a triggered event fires the action, a resolved one its undo."""

    def __init__(self, name: str, do: Request, undo: Request | None, brands: frozenset[str] = frozenset(),
                 min_severity: Severity = Severity.INFO, headers: Mapping[str, str] | None = None,
                 token: str = "", timeout_s: float = 10.0, clock: Callable[[], float] = time.time,
                 secrets: tuple[str, ...] = ()) -> None:
        self.action = name
        self.name = PREFIX + name
        self.do = do
        self.undo = undo
        self.brands = brands
        self.min_severity = min_severity
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s
        self._clock = clock
        self._redact = Redactor([token, *secrets])

    def __repr__(self) -> str:
        return f"HttpAction(name={self.action!r}, destination={self.do.destination!r})"

    def matches(self, event: AlertEvent) -> bool:
        return (not self.brands or event.brand in self.brands) and event.severity.rank >= self.min_severity.rank

    def send(self, event: Mapping[str, Any]) -> None:
        undo = event.get("status") == "resolved"
        request = self.undo if undo else self.do
        if request is None:
            return  # no undo configured: nothing to do
        what = f"action {self.action!r} ({'undo' if undo else 'do'}, {request.destination})"
        url, body = request.render(event)
        answer = http_post(url, body if request.method != "GET" else None, self.headers, self.timeout_s, what,
                           self._redact, method=request.method)
        check_answer(answer, what, self._redact, self._clock())
        log.info("%s for %s: HTTP %d", what, event.get("crisis_id"), answer.status)


KEYS: dict[str, type | tuple[type, ...]] = {
    "brands": list, "min_severity": str, "method": str, "url": str, "url_env": str, "body": str,
    "token_env": str, "headers": dict, "undo_method": str, "undo_url": str, "undo_url_env": str, "undo_body": str,
    "timeout_s": (int, float),
}


def build(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> HttpAction:
    """The action for an ``[[actions]]`` table."""
    if not table.get("name"):
        raise NotifierConfigError(f"{where}.name is required: it names the action in the outbox and the alerts")
    name, opts = options(table, where, "action", KEYS)
    secrets: list[str] = []

    def url_of(key: str) -> str | None:
        plain, var = opts.get(key), opts.get(f"{key}_env")
        if plain and var:
            raise NotifierConfigError(f"{where}: set {key} or {key}_env, not both")
        if var:
            value = secret(table, f"{key}_env", where, env)
            secrets.extend(url_secrets(value))
            return value
        return plain

    def method_of(key: str, default: str) -> str:
        method = str(opts.get(key, default)).upper()
        if method not in METHODS:
            raise NotifierConfigError(f"{where}.{key} must be one of {', '.join(METHODS)}, got {method!r}")
        return method

    url = url_of("url")
    if not url:
        raise NotifierConfigError(f"{where}.url (or url_env) is required: the endpoint the action calls")
    method = method_of("method", "POST")
    do = Request(method, url, opts.get("body"), where)
    undo_url = url_of("undo_url")
    undo = Request(method_of("undo_method", method), undo_url, opts.get("undo_body"), f"{where} (undo)") \
        if undo_url else None
    brands = opts.get("brands", [])
    if not all(isinstance(b, str) and b for b in brands):
        raise NotifierConfigError(f"{where}.brands must be a list of brand names")
    try:
        min_severity = Severity(opts.get("min_severity", "info"))
    except ValueError:
        raise NotifierConfigError(f"{where}.min_severity must be one of info, warning, error, critical") from None
    headers = opts.get("headers", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise NotifierConfigError(f"{where}.headers must map header names to strings (secrets: use token_env)")
    token = secret(table, "token_env", where, env) if "token_env" in opts else ""
    return HttpAction(name, do, undo, frozenset(brands), min_severity, headers, token, timeout_option(opts, where),
                      secrets=tuple(secrets))


def build_actions(tables: tuple[Mapping[str, Any], ...], env: Mapping[str, str]) -> dict[str, HttpAction]:
    actions: dict[str, HttpAction] = {}
    for i, table in enumerate(tables):
        a = build(table, f"actions[{i}]", env)
        if a.name in actions:
            raise NotifierConfigError(f"actions[{i}].name {a.action!r} is used twice: names must be unique")
        actions[a.name] = a
    return actions
