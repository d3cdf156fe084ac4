"""Alerts and the dashboard as code: promtool checks and unit-tests the rules; every metric that
a rule or a panel reads is one the service exports (no dead alert, no dead panel)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "ops" / "prometheus"
DASHBOARD = ROOT / "ops" / "grafana" / "wandstore.json"
METRIC = re.compile(r"\bwandstore_[a-z0-9_]+")
RECORDED = re.compile(r"\bwandstore:[a-z0-9_:]+")


def promtool() -> str:
    """promtool's path; under CI (CI=true) its absence fails, elsewhere it skips with the fix."""
    found = shutil.which("promtool")
    if found is None:
        why = "promtool not found: install Debian's `prometheus` package (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=PROM, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_rules_and_the_config() -> None:
    tool = promtool()
    rules = run(tool, "check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = run(tool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_every_alert() -> None:
    tool = promtool()
    result = run(tool, "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # Every alert has a test in which it fires.
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")
    }
    assert alert_names() == fired


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_names() -> set[str]:
    return {r["alert"] for r in rules() if "alert" in r}


def test_the_seeds_thresholds_and_the_issues_alerts_are_there() -> None:
    names = alert_names()
    for wanted in (
        "WandstoreApiErrorRateWarning",  # > 1%
        "WandstoreApiErrorRateCritical",  # > 5%
        "WandstorePersonalizationSlow",  # P95 > 500 ms
        "WandstoreQueueLagInteractive",
        "WandstoreDeadLettersGrowing",
        "WandstoreBudgetBurnRate",
        "WandstoreCacheHitRatioDrop",
        "WandstoreApiRateLimited",
    ):
        assert wanted in names
    by_name = {r["alert"]: r for r in rules() if "alert" in r}
    assert by_name["WandstoreApiErrorRateWarning"]["expr"].strip().endswith("> 0.01")
    assert by_name["WandstoreApiErrorRateCritical"]["expr"].strip().endswith("> 0.05")
    assert by_name["WandstorePersonalizationSlow"]["expr"].strip().endswith("> 0.5")
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#")


def test_runbook_anchors_exist_in_the_operations_page() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        if "alert" in rule:
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert anchor in headings, f"{rule['alert']}: no heading for #{anchor} in docs/operations.md"


def exported_names(redis_client: Any) -> set[str]:
    """Every sample name the worker's and the web process's metrics can expose."""
    from entrypoints.api.metrics import ApiMetrics, QueueDepth
    from pipelines.metrics import instruments

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    families: list[Any] = []
    for metric in vars(instruments()).values():
        families.extend(metric.describe())
    api = ApiMetrics(redis_client)
    families.extend(f for c in (api.requests, api.latency, api.generations) for f in c.describe())
    families.extend(QueueDepth(redis_client).collect())  # read from Redis: needs a real one
    names = {f.name + suffix for f in families for suffix in suffixes[f.type]}
    assert "wandstore_queue_dead_letters" in names and "wandstore_cost_usd_total" in names
    return names


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def test_rules_read_only_metrics_the_service_exports(redis_client: Any) -> None:
    exported = exported_names(redis_client)
    recorded = recorded_names()
    for rule in rules():
        expr = rule["expr"]
        assert set(METRIC.findall(expr)) <= exported, (rule.get("alert") or rule.get("record"), expr)
        assert set(RECORDED.findall(expr)) <= recorded, expr


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


def test_dashboard_parses_and_has_no_dead_panel(redis_client: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported, recorded = exported_names(redis_client), recorded_names()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert rows == {"Cost", "Cache hits", "Latency", "Queues"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = METRIC.findall(target["expr"]) + RECORDED.findall(target["expr"])
            assert used, f"panel {panel['title']!r} reads no wandstore metric"
    for query in dashboard_queries(dashboard):
        assert set(METRIC.findall(query)) <= exported, query
        assert set(RECORDED.findall(query)) <= recorded, query


def test_the_rules_budget_is_production_daily_budget() -> None:
    from adapters.settings import Settings

    (budget,) = [r["expr"] for r in rules() if r.get("record") == "wandstore:daily_budget_usd"]
    value = float(re.fullmatch(r"vector\(([0-9.]+)\)", budget.strip()).group(1))  # type: ignore[union-attr]
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "env.production").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    expected = float(env.get("DAILY_BUDGET_USD", Settings.model_fields["daily_budget_usd"].default))
    assert value == expected
