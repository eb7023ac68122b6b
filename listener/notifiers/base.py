"""The notifier contract shared by every receiver type."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class NotifierError(RuntimeError):
    """Delivery failed.  ``retryable``: a later attempt may succeed (timeouts, 5xx, 429)."""

    def __init__(self, message: str, retryable: bool = True, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class NotifierConfigError(ValueError):
    """A ``[[receivers]]`` table that cannot work: names the key and the fix."""


class Notifier(Protocol):
    name: str
    """The receiver's configured name (the outbox's delivery key with the alert id)."""

    def send(self, event: Mapping[str, Any]) -> None:
        """Deliver one alert event (the JSON form of ``AlertEvent.to_dict()``) or raise NotifierError."""
        ...


def secret(table: Mapping[str, Any], key: str, where: str, env: Mapping[str, str]) -> str:
    """The secret in the environment variable named by ``table[key]`` — never the file, never logged."""
    var = table.get(key)
    if not isinstance(var, str) or not var:
        raise NotifierConfigError(f"{where}.{key} is required: the name of the environment variable that holds "
                                  "the secret")
    value = env.get(var)
    if not value:
        raise NotifierConfigError(f"{where}.{key}: the environment variable {var} is not set")
    return value


DEFAULT_TIMEOUT_S = 10.0
MAX_RETRY_TIMEOUT_S = 60.0
"""The most a retry's timeout grows to (a configured ``timeout_s`` above it is kept as it is)."""

_ATTEMPT: ContextVar[int] = ContextVar("crisiswatch_delivery_attempt", default=1)


@contextmanager
def delivery_attempt(n: int) -> Iterator[None]:
    """The block is attempt ``n`` (1 = the first) of one delivery: set by the outbox's dispatcher around
    :meth:`Notifier.send`, read by :func:`attempt_timeout`."""
    token = _ATTEMPT.set(max(1, int(n)))
    try:
        yield
    finally:
        _ATTEMPT.reset(token)


def attempt_timeout(timeout_s: float) -> float:
    """The timeout for the current attempt: the configured one times the attempt number, at most
    :data:`MAX_RETRY_TIMEOUT_S` (never less than the configured one).

    Why: a receiver that takes longer than the timeout usually still processes the request we stopped
    waiting for; retrying with the same timeout repeats the notice on every attempt and never sees an answer.
    Waiting longer each time ends that: a receiver that takes between ``n - 1`` and ``n`` times the timeout
    gets ``n - 1`` copies too many (one for a receiver up to twice as slow as the timeout).  One slower than
    the cap still gets a copy per retry until the delivery is given up (``[outbox] give_up_after_s``).
    """
    return min(timeout_s * _ATTEMPT.get(), max(timeout_s, MAX_RETRY_TIMEOUT_S))


COMMON_KEYS = ("type", "name")


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
