"""deploy/monitoring/: the Grafana dashboard and the Prometheus alerting rules are wired to the metrics the code
really exposes — a metric renamed in the code (or in them) breaks this test, not a dashboard at 3 am.

``.ci/check-monitoring`` runs ``promtool`` (rule syntax, the scrapes' format and naming); here the same checks
run when promtool is installed, and otherwise everything that needs no promtool.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring_exposition import dashboard_as_rules, dashboard_exprs, dashboard_panels, scrapes

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARD = MONITORING / "crisiswatch-dashboard.json"
RULES = MONITORING / "crisiswatch-rules.yml"
PROMETHEUS = MONITORING / "prometheus.yml"

NAME = re.compile(r"\bcrisiswatch_[a-z0-9_]+\b")

# What should wake someone (issue "Deployable and operable", point 14).
PAGES = {
    "CrisiswatchConsumerLagHigh", "CrisiswatchConsumerLagGrowing", "CrisiswatchListenerDegraded",
    "CrisiswatchSnapshotStale", "CrisiswatchDeadLetterRateHigh", "CrisiswatchNoMentionsConsumed",
    "CrisiswatchDeliveriesFailing", "CrisiswatchDeliveriesDead", "CrisiswatchOutboxBacklog",
    "CrisiswatchOutboxOldestUndelivered", "CrisiswatchOutboxUnavailable", "CrisiswatchNotifyStalled",
}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return scrapes(tmp_path_factory.mktemp("monitoring"))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def sample_names(text: str) -> set[str]:
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_the_scrapes_use_base_units_and_under_run_no_name_is_declared_twice(exposition: dict[str, str]) -> None:
    for role, text in exposition.items():
        families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
        assert len(families) == len(set(families)), f"{role}: a metric family is declared twice"
        assert not [n for n in families if re.search(r"_(minutes|hours|milliseconds)$", n)], role
    listener, notify, run = (set(sample_names(exposition[r])) for r in ("listener", "notify", "run"))
    assert "crisiswatch_held_back_seconds" in listener and "crisiswatch_mentions_consumed_total" in listener
    assert "crisiswatch_deliveries_sent_total" in notify and "crisiswatch_outbox_pending_deliveries" in notify
    assert listener | notify == run, "crisiswatch run serves both roles' metrics on the listener's /metrics"
    assert not listener & notify


def test_the_dashboard_is_importable_with_the_datasource_as_a_variable(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    assert dashboard.get("id") is None, "an exported id makes an import overwrite another dashboard"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids))
    for p in dashboard_panels(dashboard):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
    titles = " ".join(p["title"].lower() for p in dashboard_panels(dashboard))
    for topic in ("lag", "dead letters", "degraded", "snapshot", "deliveries", "outbox", "escalations",
                  "acknowledgements"):
        assert topic in titles, topic


def test_the_rules_page_for_what_should_wake_someone(rules: list[dict[str, Any]]) -> None:
    names = [r["alert"] for r in rules if "alert" in r]
    assert len(names) == len(set(names))
    assert PAGES <= set(names), PAGES - set(names)
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_every_metric_the_dashboard_and_the_rules_use_is_exposed(
        exposition: dict[str, str], dashboard: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    exposed = sample_names(exposition["run"])
    used = {n for expr in [*dashboard_exprs(dashboard), *(r["expr"] for r in rules)] for n in NAME.findall(expr)}
    assert used, "no crisiswatch metric found in the queries"
    assert not used - exposed, f"used but not exposed by the code: {sorted(used - exposed)}"
    # and the important ones are shown or alerted on at all
    for name in ("crisiswatch_consumer_lag", "crisiswatch_degraded", "crisiswatch_last_snapshot_timestamp_seconds",
                 "crisiswatch_dead_letters_total", "crisiswatch_deliveries_dead_total",
                 "crisiswatch_delivery_failures_total", "crisiswatch_outbox_pending_deliveries",
                 "crisiswatch_outbox_oldest_pending_age_seconds", "crisiswatch_outbox_unavailable",
                 "crisiswatch_mentions_consumed_total", "crisiswatch_held_back_seconds",
                 "crisiswatch_escalations_total", "crisiswatch_acknowledgements_total"):
        assert name in used, name


def test_the_example_prometheus_config_loads_the_rules_and_scrapes_both_roles() -> None:
    doc = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert (MONITORING / doc["rule_files"][0]).resolve() == RULES.resolve()
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert {"crisiswatch-listener", "crisiswatch-notify"} <= set(jobs)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (.ci/check-monitoring "
                                                               "installs it)")
def test_promtool_accepts_the_rules_the_dashboard_queries_and_the_scrapes(
        exposition: dict[str, str], dashboard: dict[str, Any], tmp_path: Path) -> None:
    queries = tmp_path / "dashboard-queries.yml"
    queries.write_text(dashboard_as_rules(dashboard), encoding="utf-8")
    for args in (["check", "rules", str(RULES), str(queries)], ["test", "rules", str(RULES.with_suffix(".test.yml"))]):
        done = subprocess.run(["promtool", *args], capture_output=True, text=True)
        assert done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}"
    for role, text in exposition.items():
        done = subprocess.run(["promtool", "check", "metrics"], input=text, text=True, capture_output=True)
        assert done.returncode == 0, f"{role}: {done.stdout}{done.stderr}"
