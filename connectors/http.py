"""Polite HTTP for polling sources: budgets, backoff, ``Retry-After``.

Every HTTP connector fetches through one :class:`HttpClient`, which

* spends from a per-source budget (a token bucket: ``requests_per_minute``),
* retries connection errors and 5xx answers with exponential backoff and full
  jitter, up to ``max_retries``,
* on 429 (and 503 with ``Retry-After``) waits what the server asks — seconds or
  an HTTP date — before trying again,
* raises :class:`SourceUnavailable` when it gives up, so the connector can log,
  count and try again at its next poll rather than crash the ingest.

Clock, sleep and randomness are injectable so tests run without waiting.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

log = logging.getLogger(__name__)

USER_AGENT = "crisiswatch/0.1 (+self-hosted social listening)"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.1``, ``::1``, ``[::1]``): traffic that never leaves the
    machine, so plain HTTP / SMTP without TLS is acceptable there and nowhere else."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SourceUnavailable(RuntimeError):
    """The source did not answer usefully after every retry.

    ``status`` is the last HTTP status (None for a network error) and ``body``
    the start of the last answer, so a connector can act on a 401 or show the
    API's own explanation.
    """

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:2000]


class Stopped(SourceUnavailable):
    """A wait was cut short because the process is stopping (not an outage)."""


class Headers(dict[str, str]):
    """Response headers with case-insensitive look-up (``headers.get("etag")``)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class Response:
    status: int
    """2xx, or 304 Not Modified for a conditional request."""
    headers: Headers
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class TokenBucket:
    """``rate_per_minute`` requests a minute on average, bursts up to ``burst``."""

    def __init__(self, rate_per_minute: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = float(max(burst, 1))
        self.tokens = self.capacity
        self.clock = clock
        self.at = clock()

    def reserve(self) -> float:
        """Take one token and return how long to wait before using it (0 if it is there now).

        Tokens may go negative: a caller that must wait is given the whole wait
        at once, so one request means one sleep (and an injected no-op sleep in
        tests never spins).
        """
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class HttpClient:
    def __init__(
        self,
        name: str,
        requests_per_minute: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """``stop``: the process's stop event; every wait ends early when it is set, and the
        request then raises :class:`SourceUnavailable` so shutdown never waits out a backoff."""
        self.name = name
        self.bucket = TokenBucket(requests_per_minute, clock=clock)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.stop = stop
        self._sleep = sleep or (stop.wait if stop is not None else time.sleep)
        self.wall = wall
        self.rng = rng or random.Random()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)
        if self.stop is not None and self.stop.is_set():
            raise Stopped(f"{self.name}: stopping")

    def get(self, url: str, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params, doseq=True)}"
        return self.request("GET", url, headers=headers)

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        attempt = 0
        while True:
            wait = self.bucket.reserve()
            if wait > 0:
                self.sleep(wait)
            self.requests += 1
            req = urllib.request.Request(url, data=body, method=method, headers={**self.headers, **(headers or {})})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URLs
                    return Response(resp.status, Headers(resp.headers.items()), resp.read())
            except urllib.error.HTTPError as exc:
                status, hdrs = exc.code, Headers(exc.headers.items() if exc.headers else ())
                detail = f"HTTP {status}"
                if status == 304:
                    return Response(304, hdrs, b"")
                last_status, last_body = status, _read(exc)
                if status not in (429, 500, 502, 503, 504):
                    raise SourceUnavailable(f"{self.name}: {method} {_redact(url)} answered {status}",
                                            status, last_body) from None
                asked = retry_after_seconds(hdrs.get("Retry-After"), self.wall())
                if asked is None and status == 429:
                    asked = rate_limit_reset_seconds(hdrs, self.wall())
                if status == 429:
                    self.rate_limited += 1
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, OSError) as exc:
                # HTTPException covers a connection dropped in the middle of a body (IncompleteRead)
                detail, asked = f"{type(exc).__name__}: {exc}", None
                last_status, last_body = None, b""
            attempt += 1
            if attempt > self.max_retries:
                raise SourceUnavailable(f"{self.name}: {method} {_redact(url)} failed {attempt} times; last: {detail}",
                                        last_status, last_body)
            self.retries += 1
            delay = asked if asked is not None else self.backoff(attempt)
            log.warning("%s: %s, retry %d in %.1f s", self.name, detail, attempt, delay)
            self.sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        return self.rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


def rate_limit_reset_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until a rate-limit window resets, from the vendors' reset headers.

    Reddit's ``X-Ratelimit-Reset`` counts seconds until the reset; X's
    ``x-rate-limit-reset`` is the reset's epoch time (a number above 10^9 is
    read as one); Mastodon's ``X-RateLimit-Reset`` is an ISO-8601 time.
    """
    for name in ("x-rate-limit-reset", "x-ratelimit-reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is None:
                continue
            return max(0.0, when.timestamp() - now)
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    return None


def _read(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except (OSError, http.client.HTTPException):
        return b""


def _redact(url: str) -> str:
    """Drop the query string from URLs in messages: it may hold a token."""
    return url.split("?", 1)[0]
