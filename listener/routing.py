"""Which receivers get an alert, and who is next when nobody answers: routes in the configuration file.

Rules are tried in order, Alertmanager-style; the first that matches decides,
unless it says ``continue = true``, in which case later rules are tried too::

    [[routes]]                     # acme's serious crises page the comms on-call, then the leaders
    name = "acme-serious"
    brands = ["acme"]
    min_severity = "error"
    receivers = ["comms-pagerduty"]          # level 1: notified at once
    start_level = { critical = 2 }           # a critical crisis starts at level 2 (levels 1 and 2 at once)
    repeat_interval_minutes = 60             # remind while it lasts (0 = never)
    continue = true

    [[routes.escalation]]                    # level 2: level 1 did not acknowledge within 15 minutes
    after_minutes = 15
    receivers = ["head-of-comms-email"]

    [[routes.escalation]]                    # level 3: still nobody after 30 more minutes
    after_minutes = 30
    receivers = ["exec-email"]

    [[routes]]                     # the catch-all: the social team's channel
    receivers = ["social-slack"]

A rule without ``brands`` matches every brand; without ``min_severity``, every
severity.  A crisis's severity only rises, so a crisis that turns critical can
start matching a rule it did not match before (the leaders are paged then); a
rule that matched once keeps receiving that crisis's notices until it
resolves.  With no ``[[routes]]`` at all, one route named ``default`` sends
every alert to every receiver.  An alert that no rule matches goes to no
receiver — it is still on the ``alerts`` topic and in the history — and is
counted.

Escalation follows PagerDuty's escalation policies: ``after_minutes`` of a
level counts from the moment the level before it was notified; an
acknowledgement (``crisiswatch ack``) stops it.  ``start_level`` maps a
severity to the level a crisis of that severity or higher starts at.
Grouping: the unit of notification is the crisis (Alertmanager's
``group_by = [brand, crisis]``); ``updated`` notices closer together than
``group_interval_minutes`` are merged (only the newest is sent when the
interval ends); triggers, severity rises, escalations, acknowledgements and
resolutions are never held back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors import AlertEvent, Severity

from .config import ConfigError

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Level:
    receivers: tuple[str, ...]
    after_minutes: float = 0.0
    """Minutes the level before this one has gone unacknowledged before this one is notified."""


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    brands: frozenset[str] = frozenset()
    min_severity: Severity = Severity.INFO
    continue_: bool = False
    name: str = DEFAULT_ROUTE
    escalation: tuple[Level, ...] = ()
    """Levels 2, 3, …; level 1 is ``receivers``."""
    start_level: Mapping[Severity, int] = field(default_factory=dict)
    repeat_interval_minutes: float = 240.0
    group_interval_minutes: float = 5.0

    def matches(self, event: AlertEvent) -> bool:
        return (not self.brands or event.brand in self.brands) and event.severity.rank >= self.min_severity.rank

    @property
    def levels(self) -> tuple[Level, ...]:
        return (Level(self.receivers), *self.escalation)

    def level_for(self, severity: Severity) -> int:
        """The level (1-based) a crisis of ``severity`` starts at."""
        return max([1, *(lvl for s, lvl in self.start_level.items() if severity.rank >= s.rank)])

    def receivers_up_to(self, level: int) -> tuple[str, ...]:
        out: list[str] = []
        for lvl in self.levels[:level]:
            out.extend(r for r in lvl.receivers if r not in out)
        return tuple(out)


class Router:
    def __init__(self, routes: Sequence[Route], receivers: Sequence[str]) -> None:
        self.routes = list(routes) or [Route(tuple(receivers))]
        self.by_name = {r.name: r for r in self.routes}
        self.unrouted = 0

    def routes_for(self, event: AlertEvent) -> list[Route]:
        chosen: list[Route] = []
        for route in self.routes:
            if route.matches(event):
                chosen.append(route)
                if not route.continue_:
                    break
        if not chosen:
            self.unrouted += 1
        return chosen

    def receivers(self, event: AlertEvent) -> tuple[str, ...]:
        """Everyone an event reaches at once (each matching route's starting levels)."""
        out: list[str] = []
        for route in self.routes_for(event):
            out.extend(r for r in route.receivers_up_to(route.level_for(event.severity)) if r not in out)
        return tuple(out)


ROUTE_KEYS = ("name", "receivers", "brands", "min_severity", "continue", "escalation", "start_level",
              "repeat_interval_minutes", "group_interval_minutes")


def routes_from_config(tables: Sequence[Mapping[str, Any]], receivers: Sequence[str]) -> list[Route]:
    """``[[routes]]`` tables to rules; errors name the key and the fix."""
    known = set(receivers)
    routes: list[Route] = []
    for i, t in enumerate(tables):
        where = f"routes[{i}]"
        unknown = set(t) - set(ROUTE_KEYS)
        if unknown:
            raise ConfigError(f"unknown key {where}.{sorted(unknown)[0]}: known keys are {', '.join(ROUTE_KEYS)}")
        name = t.get("name", f"routes[{i}]")
        if not isinstance(name, str) or not name.strip() or name in {r.name for r in routes}:
            raise ConfigError(f"{where}.name must be a non-empty string, unique among the routes")
        levels = [_receivers(t.get("receivers"), f"{where}.receivers", known)]
        escalation = t.get("escalation", [])
        if not isinstance(escalation, list):
            raise ConfigError(f"{where}.escalation must be an array of tables: [[routes.escalation]]")
        steps = []
        for j, step in enumerate(escalation):
            at = f"{where}.escalation[{j}]"
            if not isinstance(step, dict) or set(step) - {"after_minutes", "receivers"}:
                raise ConfigError(f"{at} must be a table with after_minutes and receivers")
            steps.append(Level(_receivers(step.get("receivers"), f"{at}.receivers", known),
                               _minutes(step.get("after_minutes"), f"{at}.after_minutes", positive=True)))
        brands = t.get("brands", [])
        if not isinstance(brands, list) or not all(isinstance(b, str) and b for b in brands):
            raise ConfigError(f"{where}.brands must be a list of brand names")
        start = t.get("start_level", {})
        if not isinstance(start, dict):
            raise ConfigError(f"{where}.start_level must be a table of severity = level, e.g. {{ critical = 2 }}")
        start_level = {}
        for sev, lvl in start.items():
            severity = _severity(sev, f"{where}.start_level")
            if isinstance(lvl, bool) or not isinstance(lvl, int) or not 1 <= lvl <= 1 + len(steps):
                raise ConfigError(f"{where}.start_level.{sev} must be a level from 1 to {1 + len(steps)}")
            start_level[severity] = lvl
        cont = t.get("continue", False)
        if not isinstance(cont, bool):
            raise ConfigError(f"{where}.continue must be true or false")
        routes.append(Route(
            levels[0], frozenset(brands), _severity(t.get("min_severity", "info"), f"{where}.min_severity"), cont,
            name.strip(), tuple(steps), start_level,
            _minutes(t.get("repeat_interval_minutes", 240.0), f"{where}.repeat_interval_minutes"),
            _minutes(t.get("group_interval_minutes", 5.0), f"{where}.group_interval_minutes"),
        ))
    return routes


def _receivers(names: Any, where: str, known: set[str]) -> tuple[str, ...]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where} must be a non-empty list of receiver names")
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(f"{where}: {missing[0]!r} is not a configured receiver "
                          f"(known: {', '.join(sorted(known)) or 'none'})")
    return tuple(names)


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ConfigError(f"{where} must be one of info, warning, error, critical; got {value!r}") from None


def _minutes(value: Any, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (positive and value == 0):
        raise ConfigError(f"{where} must be a number of minutes{' greater than 0' if positive else ' (0 = off)'}")
    return float(value)
