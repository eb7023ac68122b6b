"""Checking a ``[[sources]]`` table: the one helper every connector's ``build`` uses.

Its own module (not the registry) so that connector modules can import it
while the registry imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .source import SourceConfigError

COMMON_KEYS = ("type", "speed", "name")


def take(table: Mapping[str, Any], where: str, allowed: dict[str, type | tuple[type, ...]],
          required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a source table's own keys and types and return them.

    ``type``, ``speed`` and ``name`` (an optional instance name, for checkpoints
    and health) are common to every source and not returned.
    """
    name = table.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise SourceConfigError(f"{where}.name must be a non-empty string (it names the source's checkpoint)")
    for key in required:
        if key not in table:
            raise SourceConfigError(f"{where}.{key} is required")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in COMMON_KEYS:
            continue
        if key not in allowed:
            raise SourceConfigError(f"unknown key {where}.{key}: known keys are type, speed, "
                                    f"{', '.join(sorted(allowed))}")
        if not isinstance(value, allowed[key]) or isinstance(value, bool) and allowed[key] is not bool:
            raise SourceConfigError(f"{where}.{key} has the wrong type: {value!r}")
        out[key] = value
    return out
