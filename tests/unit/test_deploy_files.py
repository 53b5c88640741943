"""Dockerfile, compose.yaml, the Prometheus and Grafana files: consistent with the settings and with each other.

No Docker engine runs here: these checks read the files (the images themselves are not pulled or built).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings
from tests.unit.test_grafana_dashboard import PROMETHEUS_SERIES, exposed_names, metric_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "infra" / "prometheus"
CATALOG_VAR = re.compile(r"\bCATALOG_[A-Z0-9_]+\b")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _setting_names() -> set[str]:
    return {f"CATALOG_{name.upper()}" for name in Settings.model_fields}


def _dockerfile_env() -> dict[str, str]:
    """Variables the Dockerfile's ENV instructions set (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line))
    return env


def test_every_catalog_variable_is_a_setting() -> None:
    settings = _setting_names()
    used = set(CATALOG_VAR.findall(COMPOSE.read_text())) | set(CATALOG_VAR.findall(DOCKERFILE.read_text()))
    assert used, "compose.yaml and the Dockerfile configure the worker through CATALOG_* variables"
    assert not used - settings, f"not fields of streams.settings.Settings: {sorted(used - settings)}"


def test_the_worker_settings_in_compose_and_dockerfile_validate() -> None:
    """The values too: Settings accepts them (its own validation, no environment of this machine read)."""
    worker = _compose()["services"]["worker"]
    values = {**_dockerfile_env(), **_environment(worker)}
    fields = {k.removeprefix("CATALOG_").lower(): v for k, v in values.items() if k.startswith("CATALOG_")}
    settings = Settings.model_validate(fields)
    assert settings.metrics_port == 9108
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.milvus_uri.startswith("http://milvus:")


def test_compose_has_the_stack_and_publishes_on_loopback_only() -> None:
    services = _compose()["services"]
    assert {"kafka", "milvus", "worker", "prometheus", "grafana"} <= set(services)
    published = []
    for name, service in services.items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
            published.append(port)
    assert "127.0.0.1:9108:9108" in published
    kafka = _environment(services["kafka"])
    assert "broker,controller" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert "zookeeper" not in services
    assert services["milvus"]["image"].startswith("milvusdb/milvus:v2.3.")


def test_compose_references_files_that_exist() -> None:
    services = _compose()["services"]
    build = services["worker"]["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
    mounts = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "../", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
                mounts += 1
    assert mounts >= 4


def test_dockerfile_copies_what_exists_and_dockerignore_keeps_the_venv_out() -> None:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_prometheus_in_compose_scrapes_the_worker_with_the_rules() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.compose.yml").read_text())
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    port = _environment(services["worker"])["CATALOG_METRICS_PORT"]
    assert targets == [f"worker:{port}"]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["catalog-worker"]
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"] if v.startswith("./")}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules.yml"} <= mounted
    assert config["rule_files"] == ["rules.yml"]


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard() -> None:
    services = _compose()["services"]
    provisioning = ROOT / "infra" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "catalog.yml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    dashboard_target = mounts["./infra/grafana/dashboard.json"]
    assert dashboard_target.startswith(provider["options"]["path"] + "/")
    assert mounts["./infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    json.loads((ROOT / "infra" / "grafana" / "dashboard.json").read_text())


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_scrape_configs_name_the_job_the_rules_and_dashboard_select(config: str) -> None:
    data = yaml.safe_load((PROMETHEUS / config).read_text())
    assert [job["job_name"] for job in data["scrape_configs"]] == ["catalog-worker"]
    assert 'job="catalog-worker"' in (PROMETHEUS / "rules.yml").read_text()


def test_every_rule_uses_metrics_the_worker_exposes() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    exprs = [(r.get("alert") or r["record"], r["expr"]) for g in rules["groups"] for r in g["rules"]]
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    known = exposed_names() | PROMETHEUS_SERIES | recorded
    for name, expr in exprs:
        names = metric_names(expr)
        assert names, name
        assert not names - known, f"{name} uses {sorted(names - known)}, which no worker exposes"
    alerts = {name for name, _ in exprs if name not in recorded}
    assert {
        "CatalogWorkerDown",
        "CatalogDeadLetterRateHigh",
        "CatalogNoOutputWhileBusy",
        "CatalogMilvusRetries",
    } <= alerts
