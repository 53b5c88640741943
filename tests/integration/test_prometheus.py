"""Debian's real Prometheus scrapes a real worker on loopback and evaluates infra/prometheus/rules.yml against it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.milvus.lite_server import MilvusLiteServer
from infra.processes import stop_process_group
from tests.support.worker import WorkerEnv, WorkerProcess, free_port, produce

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "rules.yml"


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the prometheus binary is missing under CI: infra/bootstrap.sh installs Debian's package")
        pytest.skip("no prometheus binary (Debian package prometheus; infra/bootstrap.sh installs it)")
    return found


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
        return json.loads(r.read())


def _until(what: str, probe: Callable[[], Any], timeout: float, why: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = probe()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f}s\n{why()}")


@pytest.fixture
def prometheus_binary() -> str:
    return _prometheus_binary()  # before the worker starts: a skip costs nothing


@pytest.fixture
def worker(kafka_bootstrap_servers: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    with MilvusLiteServer(tmp_path / "milvus") as lite:
        env = WorkerEnv(kafka_bootstrap_servers, tmp_path, extra={"CATALOG_MILVUS_URI": lite.uri})
        proc = WorkerProcess(env).launch()
        try:
            proc.wait_ready(180)
            yield proc
        finally:
            proc.stop()


@pytest.fixture
def prometheus(prometheus_binary: str, worker: WorkerProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Prometheus on 127.0.0.1:<free port>, scraping the worker and evaluating the rules every second."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "catalog-worker",
                        "static_configs": [{"targets": [f"127.0.0.1:{worker.metrics_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as r:  # noqa: S310 - loopback
                return r.status == 200

        _until("prometheus ready", ready, 60, lambda: log.read_text()[-4000:])
        yield base, log
    finally:
        stop_process_group(proc, 15)


def _value(base: str, expr: str) -> float | None:
    result = _get(base, "/api/v1/query", query=expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _alert_state(base: str, name: str) -> str | None:
    for alert in _get(base, "/api/v1/alerts")["data"]["alerts"]:
        if alert["labels"]["alertname"] == name:
            return str(alert["state"])
    return None


def test_prometheus_scrapes_the_worker_and_the_dlq_alert_goes_pending(
    prometheus: tuple[str, Path], worker: WorkerProcess
) -> None:
    base, log = prometheus

    def why() -> str:
        return f"prometheus log:\n{log.read_text()[-3000:]}\nworker log:\n{worker.log_tail(3000)}"

    def target_up() -> bool:
        targets = _get(base, "/api/v1/targets")["data"]["activeTargets"]
        return any(t["labels"]["job"] == "catalog-worker" and t["health"] == "up" for t in targets)

    _until("the worker's target up", target_up, 30, why)
    assert _value(base, 'up{job="catalog-worker"}') == 1.0

    groups = _get(base, "/api/v1/rules")["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert {"CatalogWorkerDown", "CatalogDeadLetterRateHigh", "instance:catalog_dead_lettered:rate5m"} <= set(rules)

    def evaluated() -> bool:
        groups = _get(base, "/api/v1/rules")["data"]["groups"]
        return all(
            r["health"] == "ok" and r.get("lastEvaluation", "").startswith("2") for g in groups for r in g["rules"]
        )

    _until("every rule evaluated with health ok", evaluated, 30, why)
    assert _alert_state(base, "CatalogWorkerDown") is None

    # Two bad events a few scrapes apart: the first creates the counters' series (rate() ignores the jump
    # from no series to 1), the second makes them increase between two scrapes.
    topic = worker.env.topics["images"]
    for n in (1, 2):
        asyncio.run(produce(worker.env.bootstrap, topic, [(b"bad", b"not json")]))
        _until(
            f"dead letter {n} counted by the worker",
            lambda n=n: worker.metric("catalog_dead_lettered_total", error_code="invalid_json") >= n,
            60,
            why,
        )
        _until(
            f"dead letter {n} scraped",
            lambda n=n: (_value(base, 'sum(catalog_dead_lettered_total{job="catalog-worker"})') or 0) >= n,
            15,
            why,
        )

    _until(
        "the recording rule's DLQ rate above 0",
        lambda: (_value(base, "sum(instance:catalog_dead_lettered:rate5m)") or 0) > 0,
        20,
        why,
    )
    # every consumed event was dead-lettered: 100 % > 5 %, so the alert waits out its 10 minutes as pending
    _until(
        "CatalogDeadLetterRateHigh pending",
        lambda: _alert_state(base, "CatalogDeadLetterRateHigh") == "pending",
        20,
        why,
    )
    alert = next(
        a
        for a in _get(base, "/api/v1/alerts")["data"]["alerts"]
        if a["labels"]["alertname"] == "CatalogDeadLetterRateHigh"
    )
    assert alert["labels"]["instance"] == f"127.0.0.1:{worker.metrics_port}"
    assert float(alert["value"]) == pytest.approx(1.0)
