"""HTTP for the notifiers: one POST, no redirects, no retries, secrets scrubbed.

Retrying is the outbox dispatcher's job; a notifier POSTs once through
:func:`http_post` and turns the answer into success or a
:class:`~listener.notifiers.base.NotifierError` with :func:`check_answer`
(5xx, 408 and 429 retryable, with ``Retry-After``; other statuses not).
Each retry of a delivery waits longer for the answer than the one before
(:func:`~listener.notifiers.base.attempt_timeout`).
"""

from __future__ import annotations

import email.utils
import http.client
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any

from .base import NotifierConfigError, NotifierError, attempt_timeout

USER_AGENT = "crisiswatch/0.1 (alert notifier)"
_MAX_ANSWER = 64 * 1024


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


def destination(parts: urllib.parse.SplitResult) -> str:
    """``host[:port]`` — what errors may show of a URL whose path or query may hold a token."""
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


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


def http_post(url: str, body: bytes | None, headers: Mapping[str, str], timeout_s: float, what: str,
              redact: Callable[[str], str], method: str = "POST") -> Answer:
    """POST (or ``method``) once, no redirects, no retries.  Returns any HTTP answer; raises retryable
    NotifierError on network errors and timeouts.  ``what`` names the receiver in messages; ``redact``
    scrubs secrets.  ``timeout_s`` is the configured timeout: a retry waits longer (:func:`attempt_timeout`)."""
    timeout_s = attempt_timeout(timeout_s)
    request = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers})
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
