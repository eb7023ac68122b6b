"""Source types by name: how a ``[[sources]]`` table becomes a :class:`~connectors.source.Source`.

Adding a connector = one module with a class that has ``name`` and ``items()``,
plus one entry in :data:`BUILDERS` that turns its config table into it.  Each
builder gets the table, where it sits (``sources[2]``, for messages) and the
:class:`~connectors.source.SourceContext` (stop event, checkpoints, secrets),
checks its own keys and raises :class:`SourceConfigError` naming the key and
the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import bluesky, hackernews, mastodon, reddit, rss, webhook, x
from .mention import MentionError, parse_time
from .options import take
from .replay import FileReplay, zone
from .simulator import BrandProfile, InjectedCrisis, Simulation, demo_simulation
from .source import Source, SourceConfigError, SourceContext

__all__ = ["BUILDERS", "SourceConfigError", "build_source", "source_speed", "take"]


def _file(table: Mapping[str, Any], where: str, ctx: SourceContext) -> Source:
    """``path`` (required), ``format`` (``csv``/``jsonl``, from the extension), ``columns`` and ``constants``
    (CSV: wire field -> column, and fixed values), ``time_format`` (strptime), ``timezone`` (IANA name for
    timestamps written without one; default none: they are rejected); see :mod:`connectors.replay`."""
    opts = take(table, where, {"path": str, "format": str, "columns": dict, "constants": dict,
                                "time_format": str, "timezone": str}, required=("path",))
    if not Path(opts["path"]).is_file():
        raise SourceConfigError(f"{where}.path: no file at {opts['path']!r} (check the path and the mount)")
    if "timezone" in opts:
        try:
            zone(opts["timezone"])
        except ValueError as exc:
            raise SourceConfigError(f"{where}.timezone: {exc}") from None
    try:
        replay = FileReplay(**opts)
        replay.check()
    except ValueError as exc:
        raise SourceConfigError(f"{where}: {exc}") from None
    return replay


def _time(value: Any, key: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return parse_time(value, key)
    except MentionError as exc:
        raise SourceConfigError(str(exc)) from None


def _simulator(table: Mapping[str, Any], where: str, ctx: SourceContext) -> Source:
    opts = take(table, where, {"seed": int, "minutes": int, "start": (str, datetime), "brands": list,
                                "crises": list, "preset": str})
    if opts.get("preset", "demo") != "demo":
        raise SourceConfigError(f"{where}.preset must be 'demo'")
    if "brands" not in opts:
        return demo_simulation(opts.get("seed", 7))
    brands = tuple(BrandProfile(**b) for b in opts["brands"])
    crises = tuple(
        InjectedCrisis(**{**c, "start": _time(c["start"], f"{where}.crises.start")}) for c in opts.get("crises", [])
    )
    start = _time(opts.get("start", "2026-11-23T00:00:00Z"), f"{where}.start")
    return Simulation(brands=brands, start=start, minutes=opts.get("minutes", 24 * 60),
                      seed=opts.get("seed", 7), crises=crises)


MENTION_SOURCES = frozenset({"file", "simulator"})
"""Source types that yield mentions with their brand; every other type yields posts to be matched."""

BUILDERS: dict[str, Callable[[Mapping[str, Any], str, SourceContext], Source]] = {
    "file": _file,
    "simulator": _simulator,
    "rss": rss.build,
    "hackernews": hackernews.build,
    "reddit": reddit.build,
    "mastodon": mastodon.build,
    "bluesky": bluesky.build,
    "x": x.build,
    "webhook": webhook.build,
}


def build_source(table: Mapping[str, Any], index: int = 0, ctx: SourceContext | None = None) -> Source:
    where = f"sources[{index}]"
    kind = table.get("type")
    if kind not in BUILDERS:
        raise SourceConfigError(f"{where}.type must be one of {', '.join(sorted(BUILDERS))}, got {kind!r}")
    try:
        return BUILDERS[kind](table, where, ctx or SourceContext())
    except TypeError as exc:
        raise SourceConfigError(f"{where}: {exc}") from None


def source_speed(table: Mapping[str, Any]) -> float | None:
    speed = table.get("speed")
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed < 0:
        raise SourceConfigError(f"speed must be a number >= 0 (0 = as fast as possible), got {speed!r}")
    return float(speed)
