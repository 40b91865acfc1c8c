"""The shipped alert rules and Grafana dashboard name only metrics the gateway exports.

A renamed metric would otherwise leave an alert that can never fire: the worst kind, because it looks like calm.
The PromQL is read with a small tokenizer (strings, label matchers, ranges and grouping lists removed; functions and
keywords skipped); what is left are metric names, each checked against what the process registry and the backlog
collector expose.
"""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client import REGISTRY

from config.settings import PROJECT_ROOT
from notifications.sms.backlog import BacklogCollector
from notifications.sms.breaker import CircuitBreaker

ALERTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "gateway.json"
# Series Prometheus itself or the blackbox exporter makes, named in the rules on purpose (see alerts.yml).
EXTERNAL_METRICS = frozenset({"up", "probe_success"})
# The series each metric type writes, after its family name.
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)
# The alerts the issue asks for, by the metric each must use.
REQUIRED_ALERT_METRICS = {
    "gateway_sms_oldest_waiting_seconds",
    "gateway_sms_provider_calls_total",
    "gateway_sms_sending_paused",
    "probe_success",
    "gateway_rq_workers",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue
        if match.start() > 0 and (expr[match.start() - 1].isdigit() or expr[match.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3)
        names.add(match.group())
    return names


def exported_names(db, redis) -> set[str]:
    """Every series name this gateway can export, whether or not it has a sample yet: the process's metrics and the
    scrape-time backlog."""
    breakers = {"africastalking": CircuitBreaker(redis, failures=1, cooldown_seconds=1, probe_timeout_seconds=1)}
    families = [*REGISTRY.collect(), *BacklogCollector(db, redis, breakers).collect()]
    return {f"{family.name}{suffix}" for family in families for suffix in SERIES_SUFFIXES[family.type]}


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


def test_the_tokenizer_finds_metric_names_and_nothing_else():
    expr = (
        'sum by (route) (rate(gateway_sms_provider_calls_total{outcome=~"a|b"}[5m])) / '
        'ignoring(x) max(up{job="w"}) > 1e3 or absent(probe_success) unless on (i) gateway_rq_workers offset 5m'
    )
    assert metric_names(expr) == {"gateway_sms_provider_calls_total", "up", "probe_success", "gateway_rq_workers"}


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(db, redis):
    exported = exported_names(db, redis) | EXTERNAL_METRICS
    expressions = {**alert_expressions(), **dashboard_expressions()}
    unknown = {
        where: sorted(metric_names(expr) - exported)
        for where, expr in expressions.items()
        if metric_names(expr) - exported
    }
    assert unknown == {}
    assert all(metric_names(expr) for expr in expressions.values())


def test_the_alerts_the_operators_need_are_there():
    named = set().union(*(metric_names(expr) for expr in alert_expressions().values()))
    assert named >= REQUIRED_ALERT_METRICS
