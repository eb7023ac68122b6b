"""Which receivers get an alert: routing rules in the configuration file.

Rules are tried in order, Alertmanager-style; the first that matches decides,
unless it says ``continue = true``, in which case later rules are tried too and
their receivers are added::

    [[routes]]                     # acme's critical alerts page the comms on-call and the leaders
    brands = ["acme"]
    min_severity = "critical"
    receivers = ["comms-oncall", "leadership"]
    continue = true

    [[routes]]                     # everything about acme goes to the social team's channel
    brands = ["acme"]
    receivers = ["social-team"]

    [[routes]]                     # the catch-all
    receivers = ["social-team-general"]

A rule without ``brands`` matches every brand; without ``min_severity``, every
severity (a crisis's severity is its highest so far, so its resolve goes where
its trigger or escalation went).  With no ``[[routes]]`` at all, every alert
goes to every receiver.  An alert that no rule matches goes to no receiver —
it is still on the ``alerts`` topic and in the history — and is counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors import AlertEvent, Severity

from .config import ConfigError


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    brands: frozenset[str] = frozenset()
    min_severity: Severity = Severity.INFO
    continue_: bool = False

    def matches(self, event: AlertEvent) -> bool:
        return (not self.brands or event.brand in self.brands) and event.severity.rank >= self.min_severity.rank


class Router:
    def __init__(self, routes: Sequence[Route], receivers: Sequence[str]) -> None:
        self.routes = list(routes)
        self.all_receivers = tuple(receivers)
        self.unrouted = 0

    def receivers(self, event: AlertEvent) -> tuple[str, ...]:
        if not self.routes:
            return self.all_receivers
        chosen: list[str] = []
        for route in self.routes:
            if route.matches(event):
                chosen.extend(r for r in route.receivers if r not in chosen)
                if not route.continue_:
                    break
        if not chosen:
            self.unrouted += 1
        return tuple(chosen)


def routes_from_config(tables: Sequence[Mapping[str, Any]], receivers: Sequence[str]) -> list[Route]:
    """``[[routes]]`` tables to rules; errors name the key and the fix."""
    known = set(receivers)
    routes = []
    for i, t in enumerate(tables):
        where = f"routes[{i}]"
        unknown = set(t) - {"receivers", "brands", "min_severity", "continue"}
        if unknown:
            raise ConfigError(f"unknown key {where}.{sorted(unknown)[0]}: known keys are receivers, brands, "
                              "min_severity, continue")
        names = t.get("receivers")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}.receivers must be a non-empty list of receiver names")
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"{where}.receivers: {missing[0]!r} is not a configured receiver "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
        brands = t.get("brands", [])
        if not isinstance(brands, list) or not all(isinstance(b, str) and b for b in brands):
            raise ConfigError(f"{where}.brands must be a list of brand names")
        severity = t.get("min_severity", "info")
        try:
            min_severity = Severity(severity)
        except ValueError:
            raise ConfigError(f"{where}.min_severity must be one of info, warning, error, critical; "
                              f"got {severity!r}") from None
        cont = t.get("continue", False)
        if not isinstance(cont, bool):
            raise ConfigError(f"{where}.continue must be true or false")
        routes.append(Route(tuple(names), frozenset(brands), min_severity, cont))
    return routes
