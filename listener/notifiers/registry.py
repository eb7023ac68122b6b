"""Receiver types by name: how a ``[[receivers]]`` table becomes a notifier."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from .base import Notifier, NotifierConfigError

TYPES = ("webhook", "slack", "pagerduty", "email")
"""Each is the module ``listener.notifiers.<type>`` with ``build(table, where, env)``."""


def _builder(kind: str) -> Callable[[Mapping[str, Any], str, Mapping[str, str]], Notifier]:
    return importlib.import_module(f"listener.notifiers.{kind}").build  # type: ignore[no-any-return]


def build_notifier(table: Mapping[str, Any], index: int = 0, env: Mapping[str, str] | None = None) -> Notifier:
    where = f"receivers[{index}]"
    kind = table.get("type")
    if kind not in TYPES:
        raise NotifierConfigError(f"{where}.type must be one of {', '.join(TYPES)}, got {kind!r}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NotifierConfigError(f"{where}.name is required: it names the receiver in the outbox and the logs")
    return _builder(str(kind))(table, where, os.environ if env is None else env)


def build_notifiers(tables: tuple[Mapping[str, Any], ...], env: Mapping[str, str] | None = None) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for i, table in enumerate(tables):
        n = build_notifier(table, i, env)
        if n.name in notifiers:
            raise NotifierConfigError(f"receivers[{i}].name {n.name!r} is used twice: names must be unique")
        notifiers[n.name] = n
    return notifiers
