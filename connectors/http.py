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
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

USER_AGENT = "crisiswatch/0.1 (+self-hosted social listening)"


class SourceUnavailable(RuntimeError):
    """The source did not answer usefully after every retry."""


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.bucket = TokenBucket(requests_per_minute, clock=clock)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.sleep = sleep
        self.wall = wall
        self.rng = rng or random.Random()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

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
                    return Response(resp.status, dict(resp.headers.items()), resp.read())
            except urllib.error.HTTPError as exc:
                status, hdrs = exc.code, dict(exc.headers.items()) if exc.headers else {}
                detail = f"HTTP {status}"
                if status not in (429, 500, 502, 503, 504):
                    raise SourceUnavailable(f"{self.name}: {method} {_redact(url)} answered {status}") from None
                asked = retry_after_seconds(hdrs.get("Retry-After"), self.wall())
                if status == 429:
                    self.rate_limited += 1
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                detail, asked = f"{type(exc).__name__}: {exc}", None
            attempt += 1
            if attempt > self.max_retries:
                raise SourceUnavailable(f"{self.name}: {method} {_redact(url)} failed {attempt} times; last: {detail}")
            self.retries += 1
            delay = asked if asked is not None else self.backoff(attempt)
            log.warning("%s: %s, retry %d in %.1f s", self.name, detail, attempt, delay)
            self.sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        return self.rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


def _redact(url: str) -> str:
    """Drop the query string from URLs in messages: it may hold a token."""
    return url.split("?", 1)[0]
