"""Generic webhook: POST the alert event as JSON, signed, to a URL of the user's choice.

The request
-----------
``POST <url>`` with the body **exactly** ``orjson.dumps(AlertEvent.to_dict())``
(the same bytes as the ``alerts`` topic and the history file) and the headers

==============================  ==============================================================
``Content-Type``                ``application/json``
``X-Crisiswatch-Event``         the event's ``status``: triggered | escalated | updated | resolved
``X-Crisiswatch-Alert-Id``      the notice's id — the de-duplication key (see below)
``Idempotency-Key``             the same value: the conventional header of receivers that
                                de-duplicate requests (Stripe-style APIs, idempotency middleware)
``X-Crisiswatch-Timestamp``     when this attempt was sent, in Unix seconds (an integer)
``X-Crisiswatch-Signature``     ``sha256=`` + hex HMAC-SHA256, keyed with the shared secret, of
                                ``<X-Crisiswatch-Timestamp>.<raw body>``
==============================  ==============================================================

What is signed, byte for byte: the ASCII digits of the timestamp header, one
``.`` (0x2E), then the request body exactly as received — before any JSON
parsing, which would change the bytes.  The key is the secret's UTF-8 bytes.
This is Stripe's scheme ("Verify signatures manually": HMAC-SHA256 of
``t.payload``, 5-minute tolerance), sent in a header shaped like GitHub's
``X-Hub-Signature-256: sha256=<hex>`` ("Validating webhook deliveries").

A receiver should

1. recompute the HMAC over the raw body and compare in constant time
   (:func:`verify_signature` does steps 1 and 2 and may be copied);
2. reject a timestamp more than 5 minutes from its own clock — signing the
   time means a captured request cannot be replayed later;
3. de-duplicate on ``X-Crisiswatch-Alert-Id`` (or ``Idempotency-Key``, the
   same value): the id is deterministic (``<crisis id>:<n>:<status>``, or a
   reminder's or escalation's own id derived from it), so a delivery
   repeated by our outbox (a retry — also after we stopped waiting for an
   answer the receiver was still working on — or a crash between "accepted"
   and "marked delivered") carries the same id, though a fresh timestamp and
   signature.  Headers are latin-1 on the wire, so characters outside visible
   ASCII, and ``%``, are percent-encoded (UTF-8) in the header;
   ``urllib.parse.unquote`` gives the id in the body back;
4. answer 2xx quickly: we wait ``timeout_s`` for the answer at the first
   attempt and the attempt number times that at each retry (at most 60 s,
   or ``timeout_s`` if larger).  5xx, 408 and 429 (with ``Retry-After``,
   seconds or an HTTP date) make us try again later with backoff, and so
   does 409 (what a receiver that honours ``Idempotency-Key`` answers while
   it is still processing an earlier attempt with the same key); any other
   status — redirects included, which are not followed because a redirected
   POST turns into a body-less GET — is a permanent refusal and the delivery
   is marked dead.

Configuration (a ``[[receivers]]`` table)::

    [[receivers]]
    type = "webhook"
    name = "ops-hook"                 # optional, defaults to "webhook"
    url_env = "CRISISWATCH_HOOK_URL"  # env var holding the URL (often embeds a token)
    secret_env = "CRISISWATCH_HOOK_SECRET"  # env var holding the HMAC secret
    timeout_s = 10                    # per socket operation (first attempt; retries wait longer)

The URL and the secret never appear in errors, logs or ``repr()``; errors
name only the receiver and the host.

:func:`http_post` and :func:`check_answer` below are the small HTTP core that
the PagerDuty notifier shares.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from connectors.http import is_loopback

from .base import (
    DEFAULT_TIMEOUT_S,
    NotifierConfigError,
    NotifierError,
    options,
    secret,
    timeout_option,
)
from .oncall_text import notice_id
from .http import (
    Redactor,
    check_answer,
    check_http_url,
    destination,
    http_post,
    retry_after,
    url_secrets,
)

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_S = 300.0
# Visible ASCII except "%": left as is in header values, everything else is percent-encoded.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


# --- signing ---------------------------------------------------------------------------------------------------

def sign(secret_value: str | bytes, timestamp: str | int, body: bytes) -> str:
    """The ``X-Crisiswatch-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    key = secret_value.encode() if isinstance(secret_value, str) else secret_value
    digest = hmac.new(key, str(timestamp).encode("ascii") + b"." + bytes(body), hashlib.sha256).hexdigest()
    return "sha256=" + digest


def verify_signature(secret_value: str | bytes, timestamp: str | int, body: bytes | str, header: str,
                     tolerance_s: float | None = SIGNATURE_TOLERANCE_S, now: float | None = None) -> bool:
    """Receiver side: is ``header`` a valid signature of this delivery, sent within ``tolerance_s`` of ``now``?

    ``timestamp`` is the ``X-Crisiswatch-Timestamp`` header, ``body`` the raw
    request body (bytes as received; a ``str`` is taken as its UTF-8 encoding),
    ``header`` the ``X-Crisiswatch-Signature`` header.  ``now`` defaults to the
    wall clock; ``tolerance_s=None`` skips the age check (only for replaying
    captured deliveries in tests).  The comparison is constant-time.  A valid
    signature does not make a delivery new: de-duplicate on the alert id too.
    """
    ts = str(timestamp).strip()
    if not ts.isascii() or not ts.isdigit():
        return False
    if tolerance_s is not None:
        current = time.time() if now is None else now
        if abs(current - int(ts)) > tolerance_s:
            return False
    raw = body.encode() if isinstance(body, str) else bytes(body)
    given = (header or "").strip()
    if not given.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret_value, ts, raw), "sha256=" + given[len("sha256="):].lower())


def header_value(value: object) -> str:
    """A header-safe form of ``value``: identity for visible ASCII without ``%``, else percent-encoded UTF-8."""
    return urllib.parse.quote(str(value), safe=_HEADER_SAFE)


def event_json(event: Mapping[str, Any], what: str) -> bytes:
    try:
        return orjson.dumps(event if isinstance(event, dict) else dict(event))
    except (TypeError, orjson.JSONEncodeError) as err:
        raise NotifierError(f"{what}: the event cannot be encoded as JSON ({err})", retryable=False) from None


# --- the notifier ----------------------------------------------------------------------------------------------

class WebhookNotifier:
    """POSTs each alert event, signed; see the module docstring for the exact request."""

    def __init__(self, name: str, url: str, secret_value: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 clock: Callable[[], float] = time.time) -> None:
        parts = check_http_url(url, f"the URL of webhook {name!r}")
        self.name = name
        self.timeout_s = timeout_s
        self.destination = destination(parts)
        self._url = url.strip()
        self._secret = secret_value
        self._clock = clock
        self._redact = Redactor([*url_secrets(self._url), secret_value])

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, destination={self.destination!r})"

    def send(self, event: Mapping[str, Any]) -> None:
        what = f"webhook {self.name!r} ({self.destination})"
        if not event.get("id"):
            raise NotifierError(f"{what}: the event has no id", retryable=False)
        body = event_json(event, what)
        timestamp = str(int(self._clock()))
        key = header_value(notice_id(event))  # the same on every attempt of this notice
        headers = {
            "Content-Type": "application/json",
            "X-Crisiswatch-Event": header_value(event.get("status", "")),
            "X-Crisiswatch-Alert-Id": key,
            "Idempotency-Key": key,
            "X-Crisiswatch-Timestamp": timestamp,
            "X-Crisiswatch-Signature": sign(self._secret, timestamp, body),
        }
        answer = http_post(self._url, body, headers, self.timeout_s, what, self._redact)
        if answer.status == 409:
            # What receivers that honour Idempotency-Key answer while a request with the same key is still
            # being processed — our earlier attempt, which we stopped waiting for: ask again later.
            raise NotifierError(f"{what}: HTTP 409 — still processing an earlier attempt of this notice",
                                retryable=True, retry_after_s=retry_after(answer.headers.get("retry-after"),
                                                                          self._clock()))
        check_answer(answer, what, self._redact, self._clock())


def build(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> WebhookNotifier:
    """The notifier for a ``[[receivers]]`` table with ``type = "webhook"``."""
    name, opts = options(table, where, "webhook", {"url_env": str, "secret_env": str, "timeout_s": (int, float)},
                         required=("url_env", "secret_env"))
    url = secret(table, "url_env", where, env)
    parts = check_http_url(url, f"{where}.url_env: the URL in ${opts['url_env']}")
    signing_secret = secret(table, "secret_env", where, env)
    if len(signing_secret) < 16:
        raise NotifierConfigError(f"{where}.secret_env: the secret in ${opts['secret_env']} is too short; use at "
                                  "least 16 random characters (e.g. `openssl rand -hex 32`)")
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        log.warning("%s: webhook %r sends alerts over plain http to %s; use https", where, name, destination(parts))
    return WebhookNotifier(name, url, signing_secret, timeout_option(opts, where))
