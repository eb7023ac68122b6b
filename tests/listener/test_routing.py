from __future__ import annotations

import pytest

from detectors import AlertEvent, Severity, Status
from listener.config import ConfigError
from listener.routing import Router, routes_from_config

RECEIVERS = ["oncall", "leaders", "social", "general"]
TABLES = [
    {"brands": ["acme"], "min_severity": "critical", "receivers": ["oncall", "leaders"], "continue": True},
    {"brands": ["acme"], "receivers": ["social"]},
    {"receivers": ["general"]},
]


def event(brand: str, severity: Severity) -> AlertEvent:
    return AlertEvent(id=f"{brand}:x:0:triggered", crisis_id=f"{brand}:x", brand=brand, status=Status.TRIGGERED,
                      severity=severity, at=0, started_at=0, summary="")


@pytest.mark.parametrize("brand, severity, expected", [
    ("acme", Severity.CRITICAL, ("oncall", "leaders", "social")),  # continue: the next match adds its receivers
    ("acme", Severity.ERROR, ("social",)),                          # first match wins
    ("globex", Severity.CRITICAL, ("general",)),                    # the catch-all
])
def test_first_match_wins_unless_continue(brand: str, severity: Severity, expected: tuple[str, ...]) -> None:
    router = Router(routes_from_config(TABLES, RECEIVERS), RECEIVERS)
    assert router.receivers(event(brand, severity)) == expected


def test_without_routes_every_receiver_and_unmatched_alerts_are_counted() -> None:
    assert Router([], RECEIVERS).receivers(event("acme", Severity.INFO)) == tuple(RECEIVERS)
    router = Router(routes_from_config([{"brands": ["acme"], "receivers": ["social"]}], RECEIVERS), RECEIVERS)
    assert router.receivers(event("globex", Severity.CRITICAL)) == ()
    assert router.unrouted == 1


@pytest.mark.parametrize("table, words", [
    ({"receivers": ["nobody"]}, "routes[0].receivers: 'nobody' is not a configured receiver"),
    ({"receivers": []}, "routes[0].receivers must be a non-empty list"),
    ({"receivers": ["social"], "min_severity": "huge"}, "routes[0].min_severity must be one of"),
    ({"receivers": ["social"], "brand": ["acme"]}, "unknown key routes[0].brand"),
    ({"receivers": ["social"], "continue": "yes"}, "routes[0].continue must be true or false"),
])
def test_bad_routes_name_the_key(table: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        routes_from_config([table], RECEIVERS)
    assert words in str(info.value)


def test_escalation_levels_and_start_levels_parse() -> None:
    (route,) = routes_from_config([{
        "name": "acme", "receivers": ["social"], "start_level": {"error": 2, "critical": 3},
        "escalation": [{"after_minutes": 15, "receivers": ["oncall"]}, {"after_minutes": 30, "receivers": ["leaders"]}],
        "repeat_interval_minutes": 60, "group_interval_minutes": 2,
    }], RECEIVERS)
    assert [lvl.receivers for lvl in route.levels] == [("social",), ("oncall",), ("leaders",)]
    assert [lvl.after_minutes for lvl in route.levels] == [0, 15, 30]
    assert [route.level_for(s) for s in Severity] == [1, 1, 2, 3]
    assert route.receivers_up_to(2) == ("social", "oncall")
    assert (route.repeat_interval_minutes, route.group_interval_minutes) == (60, 2)


@pytest.mark.parametrize("table, words", [
    ({"receivers": ["social"], "escalation": [{"receivers": ["oncall"]}]}, "escalation[0].after_minutes must be"),
    ({"receivers": ["social"], "escalation": {"receivers": ["oncall"]}}, "must be an array of tables"),
    ({"receivers": ["social"], "start_level": {"critical": 2}}, "start_level.critical must be a level from 1 to 1"),
    ({"receivers": ["social"], "start_level": {"fatal": 1}}, "start_level must be one of"),
    ({"receivers": ["social"], "repeat_interval_minutes": -1}, "repeat_interval_minutes must be a number"),
])
def test_bad_escalation_names_the_key(table: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        routes_from_config([table], RECEIVERS)
    assert words in str(info.value)


def test_delivery_refuses_routes_to_unknown_receivers_at_start_up(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from listener.notify import build_oncall
    from listener.config import load

    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/x")
    monkeypatch.setenv("HOOK_SECRET", "s" * 32)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[outbox]
path = "{tmp_path / 'o.db'}"
[[receivers]]
type = "webhook"
name = "hook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
[[routes]]
receivers = ["pager"]
""")
    with pytest.raises(ConfigError, match="'pager' is not a configured receiver"):
        build_oncall(load(cfg))
