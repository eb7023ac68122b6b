"""Real ``/metrics`` scrapes of both roles, for the monitoring checks (``tests/test_monitoring.py`` and
``.ci/check-monitoring``, which runs ``promtool check metrics`` on them).

Each role's own HTTP server is started in-process on 127.0.0.1 and scraped over HTTP, after some work that
makes every metric family appear with samples (dead letters, lag, a crisis, a receiver that is down, a
delivery given up, an escalation, an acknowledgement): a listener (``[listener] metrics_listen``), a notify
role (``[oncall] metrics_listen``) and both in one process as under ``crisiswatch run`` (the listener's
server covers the notify role too).  No Kafka: the consumers are never polled.

It also writes the Grafana dashboard's queries as recording rules (Grafana's ``$__rate_interval`` and
``$__range`` replaced by durations), so that ``promtool check rules`` parses every one of them::

    python -m tests.monitoring_exposition OUT_DIR   # OUT_DIR/listener.prom, notify.prom, run.prom and
                                                    # OUT_DIR/dashboard-queries.yml
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from detectors import AlertEvent, Severity, Status
from listener.config import Config
from listener.metrics import serving, serving_notify
from listener.notifiers.base import NotifierError
from listener.notify import Notify, OnCallStack, OutboxHealth
from listener.oncall import OnCall, OnCallStore
from listener.outbox import DispatchSettings, Dispatcher, Outbox
from listener.pipeline import Pipeline
from listener.routing import Router, routes_from_config
from listener.service import ListenerStats
from tests.detectors.helpers import bucket

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "monitoring" / "crisiswatch-dashboard.json"
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}

RECEIVERS = ["social", "oncall", "down"]
ROUTES = [{"name": "acme", "brands": ["acme"], "receivers": ["social", "down"],
           "escalation": [{"after_minutes": 15, "receivers": ["oncall"]}]}]


class _Taken:
    def send(self, event: Mapping[str, Any]) -> None:
        pass


class _Down:
    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def send(self, event: Mapping[str, Any]) -> None:
        raise NotifierError("503" if self.retryable else "400", retryable=self.retryable)


class NoKafka:
    """The notify loop's consumer, never polled here (the engine is driven by the harness)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def poll(self, timeout_ms: int = 0) -> list[Any]:
        return []

    def commit(self, offsets: Any) -> None:
        pass

    def close(self) -> None:
        pass


def a_listener() -> Any:
    """A listener's stats and pipeline after some work: two brands (one in a crisis), lag, dead letters."""
    pipeline = Pipeline()
    for brand in ("acme", "globex"):
        pipeline.admit(brand)
        for i in range(300):
            pipeline.brands[brand].detector.update(bucket(i, 10, 1, brand=brand))
    for i in range(300, 320):
        pipeline.brands["globex"].detector.update(
            bucket(i, 40, 30, brand="globex", texts=("data breach leaked passwords",) * 9))
    now = time.time()
    stats = ListenerStats(consumed=1000, batches=10, batch_seconds=0.5, assigned=(("mentions", 0), ("mentions", 1)),
                          lag={("mentions", 0): 12, ("mentions", 1): 0}, last_poll=now, last_commit=now - 1,
                          snapshots=3, last_snapshot=now - 1, restored_brands=2, broker_errors=1)
    stats.dead_letters.update({"invalid_json": 2, "future_timestamp": 1})
    stats.alerts.update({"triggered": 1, "updated": 2})
    return type("Listener", (), {"stats": stats, "pipeline": pipeline})()


def a_notify_role(directory: Path) -> OutboxHealth:
    """A notify role after a crisis: social takes every notice, "down" fails (retried: its backlog grows), the
    escalation to oncall is refused for good (dead), then someone acknowledges; its loop has turned."""
    now = [1_795_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    outbox = Outbox(directory / "outbox.db", clock=clock)
    store = OnCallStore(outbox, ack_target_minutes=15)
    engine = OnCall(store, Router(routes_from_config(ROUTES, RECEIVERS), RECEIVERS), clock=clock)
    dispatcher = Dispatcher(outbox, {"social": _Taken(), "down": _Down(True), "oncall": _Down(False)},
                            DispatchSettings(rate_per_minute=6000), clock=clock, decorate=store.view)
    config = Config(outbox=DispatchSettings(path=str(outbox.path)))
    notify = Notify(config, OnCallStack(store, engine, dispatcher), producer=None,  # type: ignore[arg-type]
                    consumer_factory=NoKafka)
    crisis = "acme:20261124T1000Z"
    engine.handle([AlertEvent(id=f"{crisis}:0:triggered", crisis_id=crisis, brand="acme", status=Status.TRIGGERED,
                              severity=Severity.ERROR, at=1_764_000_000, started_at=1_764_000_000,
                              summary="acme: data breach")])
    for minute in range(17):
        if minute == 16:
            store.acknowledge(crisis, "Ana")
        engine.tick()
        dispatcher.run_once()
        now[0] += 60
    notify.health.beat()
    return notify.health


def _get(address: tuple[str, int]) -> str:
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as resp:
        return resp.read().decode()


def scrapes(directory: Path) -> dict[str, str]:
    """``{"listener": ..., "notify": ..., "run": ...}``: the text of each server's ``/metrics``."""
    listener, health = a_listener(), a_notify_role(directory)
    with serving(listener, ("127.0.0.1", 0)) as alone, serving_notify(health, ("127.0.0.1", 0)) as notify, \
            serving(listener, ("127.0.0.1", 0), notify=health) as both:
        out = {"listener": _get(alone), "notify": _get(notify), "run": _get(both)}
    loop = health.loop
    if loop is not None:
        loop.stack.outbox.close()
    return out


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    return [q for p in dashboard["panels"] for q in (p, *p.get("panels", []))]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel's targets and of the query variables."""
    exprs = [t["expr"] for p in dashboard_panels(dashboard) for t in p.get("targets", [])]
    exprs += [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
              for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def dashboard_as_rules(dashboard: dict[str, Any]) -> str:
    """The dashboard's queries as a rules file (one recording rule each), for ``promtool check rules``."""
    rules = []
    for i, expr in enumerate(dashboard_exprs(dashboard)):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    return yaml.safe_dump({"groups": [{"name": "crisiswatch-dashboard-queries", "rules": rules}]}, sort_keys=False)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    logging.disable(logging.ERROR)  # the receivers failing on purpose are not news
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for role, text in scrapes(Path(tmp)).items():
            (out / f"{role}.prom").write_text(text, encoding="utf-8")
            print(f"{out / f'{role}.prom'}: {sum(1 for line in text.splitlines() if line.startswith('# TYPE'))} "
                  "metric families")
    (out / "dashboard-queries.yml").write_text(dashboard_as_rules(json.loads(DASHBOARD.read_text(encoding="utf-8"))),
                                               encoding="utf-8")
    print(f"{out / 'dashboard-queries.yml'}: the dashboard's queries as recording rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
