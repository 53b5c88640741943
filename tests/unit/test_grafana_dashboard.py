"""The Grafana dashboard queries only metrics a worker really exposes (names derived from the metrics classes)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streams.metrics import WorkerMetrics
from streams.rollout.control_metrics import RolloutMetrics
from streams.rollout.metrics import ReindexMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra" / "grafana" / "dashboard.json"

# series Prometheus itself writes for every target (not the worker's)
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "atan2",
}  # fmt: skip


def exposed_names() -> set[str]:
    """Every series name a worker's /metrics can carry: all three metrics classes on one fresh registry."""
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    ReindexMetrics(registry)
    RolloutMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels, strings and durations left out)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # strings
    e = re.sub(r"\{[^{}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)  # label lists
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def _exprs(node: Any) -> Iterator[str]:
    """Every PromQL string in a dashboard: panel targets and template-variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key in ("query", "definition") and isinstance(value, str):
                inner = re.fullmatch(r"\s*(?:label_values|query_result)\((.*)\)\s*", value, re.S)
                if inner:  # label_values(<series selector>, label)
                    yield (
                        inner.group(1).rsplit(",", 1)[0] if value.strip().startswith("label_values") else inner.group(1)
                    )
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _exprs(value)


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_the_parser_finds_names_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (stage, le) (rate(catalog_stage_seconds_bucket{instance=~"$instance", '
        'stage!="x"}[$__rate_interval]))) / ignoring(le) group_left sum(up{job="a"} offset 5m) > bool 1e3'
    )
    assert metric_names(expr) == {"catalog_stage_seconds_bucket", "up"}
    template = {"templating": {"list": [{"query": 'label_values(up{job="w"}, instance)'}]}}
    assert [metric_names(e) for e in _exprs(template)] == [{"up"}]
    assert metric_names("max_over_time(catalog_reindex_lag[10m:1m]) and on(instance) catalog_x") == {
        "catalog_reindex_lag",
        "catalog_x",
    }


def test_exposed_names_come_from_the_metrics_classes() -> None:
    names = exposed_names()
    for expected in (
        "catalog_events_in_total",
        "catalog_dead_lettered_total",
        "catalog_stage_seconds_bucket",
        "catalog_batch_size_count",
        "catalog_models_info",
        "catalog_reindex_lag",
        "catalog_reindex_eta_seconds",
        "catalog_activation_refused_total",
    ):
        assert expected in names
    assert "catalog_events_in" not in names  # a counter's samples carry _total


def test_every_dashboard_metric_is_one_the_worker_exposes() -> None:
    exprs = list(_exprs(_dashboard()))
    assert len(exprs) >= 20
    used = set().union(*(metric_names(e) for e in exprs))
    unknown = used - exposed_names() - PROMETHEUS_SERIES
    assert not unknown, f"the dashboard queries metrics no worker exposes: {sorted(unknown)}"
    assert all(metric_names(e) for e in exprs), [e for e in exprs if not metric_names(e)]


def test_the_dashboard_covers_what_an_operator_needs() -> None:
    used = set().union(*(metric_names(e) for e in _exprs(_dashboard())))
    for needed in (
        "catalog_events_in_total",  # throughput in
        "catalog_events_out_total",  # throughput out
        "catalog_dead_lettered_total",  # DLQ by code
        "catalog_stage_seconds_bucket",  # stage latencies
        "catalog_batch_size_bucket",  # batch sizes
        "catalog_models_info",  # model in service
        "catalog_reindex_rows_total",  # re-index rows done
        "catalog_reindex_lag",
        "catalog_reindex_eta_seconds",
        "catalog_activation_refused_total",
        "catalog_transient_retries_total",
    ):
        assert needed in used, needed


def test_the_dashboard_is_well_formed_for_grafana() -> None:
    d = _dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
