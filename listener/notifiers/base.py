"""The notifier contract shared by every receiver type."""

from __future__ import annotations

from collections.abc import Mapping
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
