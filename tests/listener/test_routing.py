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


def test_the_outbox_sink_writes_each_event_for_its_routed_receivers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from listener.outbox import Outbox, OutboxSink

    box = Outbox(tmp_path / "o.db")
    router = Router(routes_from_config(TABLES, RECEIVERS), RECEIVERS)
    sink = OutboxSink(box, router.receivers)
    sink.emit([event("acme", Severity.CRITICAL), event("globex", Severity.WARNING)])
    sink.flush()
    got = sorted((r["alert_id"].split(":")[0], r["receiver"]) for r in box.rows())
    assert got == [("acme", "leaders"), ("acme", "oncall"), ("acme", "social"), ("globex", "general")]


def test_delivery_refuses_routes_to_unknown_receivers_at_start_up(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from listener.app import delivery
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
        delivery(load(cfg))
