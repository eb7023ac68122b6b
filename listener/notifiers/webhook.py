"""Generic webhook: POST the alert event as JSON, signed, to a URL of the user's choice.

The request
-----------
``POST <url>`` with the body **exactly** ``orjson.dumps(AlertEvent.to_dict())``
(the same bytes as the ``alerts`` topic and the history file) and the headers

==============================  ==============================================================
``Content-Type``                ``application/json``
``X-Crisiswatch-Event``         the event's ``status``: triggered | escalated | updated | resolved
``X-Crisiswatch-Alert-Id``      the event's ``id`` — the de-duplication key (see below)
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
3. de-duplicate on ``X-Crisiswatch-Alert-Id``: the id is deterministic
   (``<crisis id>:<n>:<status>``), so a delivery repeated by our outbox (a
   retry, or a crash between "accepted" and "marked delivered") carries the
   same id, though a fresh timestamp and signature.  Headers are latin-1 on
   the wire, so characters outside visible ASCII, and ``%``, are
   percent-encoded (UTF-8) in the header; ``urllib.parse.unquote`` gives the
   id in the body back;
4. answer 2xx quickly.  5xx, 408 and 429 (with ``Retry-After``, seconds or an
   HTTP date) make us try again later with backoff; any other status —
   redirects included, which are not followed because a redirected POST turns
   into a body-less GET — is a permanent refusal and the delivery is marked
   dead.

Configuration (a ``[[receivers]]`` table)::

    [[receivers]]
    type = "webhook"
    name = "ops-hook"                 # optional, defaults to "webhook"
    url_env = "CRISISWATCH_HOOK_URL"  # env var holding the URL (often embeds a token)
    secret_env = "CRISISWATCH_HOOK_SECRET"  # env var holding the HMAC secret
    timeout_s = 10                    # per socket operation

The URL and the secret never appear in errors, logs or ``repr()``; errors
name only the receiver and the host.

:func:`http_post` and :func:`check_answer` below are the small HTTP core that
the PagerDuty notifier shares.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import http.client
import ipaddress
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any

import orjson

from .base import NotifierConfigError, NotifierError, secret

log = logging.getLogger(__name__)

USER_AGENT = "crisiswatch/0.1 (alert notifier)"
DEFAULT_TIMEOUT_S = 10.0
SIGNATURE_TOLERANCE_S = 300.0
COMMON_KEYS = ("type", "name")
_MAX_ANSWER = 64 * 1024
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


# --- configuration ---------------------------------------------------------------------------------------------

def options(table: Mapping[str, Any], where: str, kind: str, allowed: Mapping[str, type | tuple[type, ...]],
            required: Iterable[str] = ()) -> tuple[str, dict[str, Any]]:
    """Check a ``[[receivers]]`` table: returns (name, the type's own keys) or raises NotifierConfigError."""
    name = table.get("name", kind)
    if not isinstance(name, str) or not name.strip():
        raise NotifierConfigError(f"{where}.name must be a non-empty string (it names the receiver in the outbox)")
    for key in required:
        if key not in table:
            raise NotifierConfigError(f"{where}.{key} is required for type = {kind!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in COMMON_KEYS:
            continue
        if key not in allowed:
            raise NotifierConfigError(f"unknown key {where}.{key}: remove it; the keys of type = {kind!r} are "
                                      f"{', '.join((*COMMON_KEYS, *sorted(allowed)))}")
        want = allowed[key]
        if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
            raise NotifierConfigError(f"{where}.{key} has the wrong type ({type(value).__name__})")
        out[key] = value
    return name.strip(), out


def timeout_option(opts: Mapping[str, Any], where: str) -> float:
    value = float(opts.get("timeout_s", DEFAULT_TIMEOUT_S))
    if not math.isfinite(value) or value <= 0:
        raise NotifierConfigError(f"{where}.timeout_s must be a positive number of seconds (default 10)")
    return value


def check_http_url(url: str, what: str) -> urllib.parse.SplitResult:
    """Reject a URL urllib could not POST to; the message never contains the URL itself."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise NotifierConfigError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifierConfigError(f"{what} must be an absolute http:// or https:// URL")
    return parts


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def destination(parts: urllib.parse.SplitResult) -> str:
    """``host[:port]`` — what errors may show of a URL whose path or query may hold a token."""
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


# --- HTTP ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises HTTPError with the 3xx: we report it instead of POSTing nothing


_OPENER = urllib.request.build_opener(_NoRedirects)


class Redactor:
    """Replaces secret strings (and their URL-encoded forms) in text meant for errors and logs."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found: set[str] = set()
        for s in secrets:
            if s and len(s) >= 4:
                found.update({s, urllib.parse.quote(s, safe=""), urllib.parse.quote(s)})
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "[redacted]")
        return text


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may carry a token: the whole URL, user info, path and query, and their
    longer pieces (path segments, query values), since a receiver may echo a token on its own."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    pieces = [url, userinfo, *userinfo.split(":"), parts.path if len(parts.path) > 1 else "", parts.query,
              parts.fragment, *parts.path.split("/")]
    pieces += [v for _, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    pieces += [urllib.parse.unquote(p) for p in pieces]
    return [p for p in pieces if len(p) >= 8 or p in (url, parts.query)]


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float, what: str,
              redact: Callable[[str], str]) -> Answer:
    """POST once, no redirects, no retries.  Returns any HTTP answer; raises retryable NotifierError on
    network errors and timeouts.  ``what`` names the receiver in messages; ``redact`` scrubs secrets."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers})
    try:
        with _OPENER.open(request, timeout=timeout_s) as resp:
            return Answer(resp.status, _headers(resp.headers), resp.read(_MAX_ANSWER))
    except urllib.error.HTTPError as err:
        try:
            data = err.read(_MAX_ANSWER)
        except (OSError, http.client.HTTPException):
            data = b""
        finally:
            err.close()
        return Answer(err.code, _headers(err.headers), data)
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, TimeoutError):
            raise NotifierError(f"{what}: no answer within {timeout_s:g} s", retryable=True) from None
        raise NotifierError(f"{what}: cannot connect ({redact(_describe(reason))})", retryable=True) from None
    except TimeoutError:
        raise NotifierError(f"{what}: no answer within {timeout_s:g} s", retryable=True) from None
    except (OSError, http.client.HTTPException) as err:
        raise NotifierError(f"{what}: connection failed ({redact(_describe(err))})", retryable=True) from None
    except ValueError as err:  # http.client.InvalidURL, header values it refuses
        raise NotifierError(f"{what}: request refused by the HTTP client ({redact(_describe(err))})",
                            retryable=False) from None


def _headers(msg: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (msg.items() if msg is not None else [])}


def _describe(err: object) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def check_answer(answer: Answer, what: str, redact: Callable[[str], str], now: float,
                 default_retry_after_s: float | None = None, detail: str | None = None) -> None:
    """Raise NotifierError unless the answer is 2xx: 5xx, 408, 429 retryable (with Retry-After), others not."""
    if 200 <= answer.status < 300:
        return
    excerpt = detail if detail is not None else _excerpt(answer.body)
    message = f"{what}: HTTP {answer.status}" + (f" — {redact(excerpt)}" if excerpt else "")
    if answer.status == 429 or answer.status == 408 or answer.status >= 500:
        wait = retry_after(answer.headers.get("retry-after"), now)
        if wait is None and answer.status == 429:
            wait = default_retry_after_s
        raise NotifierError(message, retryable=True, retry_after_s=wait)
    if 300 <= answer.status < 400:
        message += " (redirects are not followed: configure the final URL)"
    raise NotifierError(message, retryable=False)


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        headers = {
            "Content-Type": "application/json",
            "X-Crisiswatch-Event": header_value(event.get("status", "")),
            "X-Crisiswatch-Alert-Id": header_value(event["id"]),
            "X-Crisiswatch-Timestamp": timestamp,
            "X-Crisiswatch-Signature": sign(self._secret, timestamp, body),
        }
        answer = http_post(self._url, body, headers, self.timeout_s, what, self._redact)
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
