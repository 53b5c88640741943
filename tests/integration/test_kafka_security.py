"""SASL/PLAIN on a real broker: the project's client factory and a real worker log in, a wrong password is refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka.runner import BrokerConfig, KafkaBroker
from streams import kafka_clients
from streams.settings import Settings
from streams.startup import StartupError, ensure_topics_at_startup
from tests.support.events import encode, good_event
from tests.support.worker import WorkerEnv, WorkerProcess, catalog_cmd, consume, produce

pytestmark = pytest.mark.integration

USER, PASSWORD = "catalog", "s3cret-sasl-pw"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A local broker with a SASL_PLAINTEXT (PLAIN) listener beside its PLAINTEXT one."""
    config = BrokerConfig(
        data_dir=tmp_path_factory.mktemp("kafka-sasl"), stop_with_parent=True, sasl_users={USER: PASSWORD}
    )
    with KafkaBroker(config) as broker:
        yield broker


def _sasl_env(password: str) -> dict[str, str]:
    return {
        "CATALOG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CATALOG_KAFKA_SASL_MECHANISM": "PLAIN",
        "CATALOG_KAFKA_SASL_USERNAME": USER,
        "CATALOG_KAFKA_SASL_PASSWORD": password,
    }


def _settings(broker: KafkaBroker, password: str, tag: str) -> Settings:
    return Settings(
        kafka_bootstrap=broker.sasl_bootstrap_servers,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username=USER,
        kafka_sasl_password=password,
        topic_images=f"{tag}.images",
        topic_enriched=f"{tag}.enriched",
        topic_dlq=f"{tag}.dlq",
        topic_labels=f"{tag}.labels",
        startup_timeout_s=10,
    )


def test_client_factory_creates_topics_produces_and_consumes_over_sasl(sasl_broker: KafkaBroker) -> None:
    settings = _settings(sasl_broker, PASSWORD, f"sasl{time.time_ns()}")

    async def run() -> list[bytes]:
        created = await ensure_topics_at_startup(settings)
        assert settings.topic_images in created
        producer = kafka_clients.producer(settings)
        await producer.start()
        try:
            await (await producer.send(settings.topic_images, b"hello", key=b"k"))
        finally:
            await producer.stop()
        consumer = kafka_clients.consumer(settings, settings.topic_images, auto_offset_reset="earliest")
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000)
        finally:
            await consumer.stop()
        return [m.value for msgs in batch.values() for m in msgs]

    assert asyncio.run(run()) == [b"hello"]


def test_wrong_password_is_refused_at_once_and_named(sasl_broker: KafkaBroker) -> None:
    settings = _settings(sasl_broker, "not-the-password", f"sasl{time.time_ns()}")
    started = time.monotonic()
    with pytest.raises(StartupError) as refused:
        asyncio.run(ensure_topics_at_startup(settings))
    assert time.monotonic() - started < 8  # not retried until the budget is spent
    assert "CATALOG_KAFKA_SASL_PASSWORD" in refused.value.setting
    assert "Authentication failed" in refused.value.cause
    assert "not-the-password" not in str(refused.value)


def test_worker_runs_over_sasl_and_stops_clearly_with_a_wrong_password(
    sasl_broker: KafkaBroker, tmp_path: Path
) -> None:
    env = WorkerEnv(sasl_broker.sasl_bootstrap_servers, tmp_path, extra=_sasl_env(PASSWORD))
    worker = WorkerProcess(env).start()  # ready: topics made, logged in, assigned
    try:
        events = [good_event(i, product_id=f"sasl-{i}")[0] for i in range(3)]
        plain = sasl_broker.bootstrap_servers  # the test reads and writes through the PLAINTEXT listener
        asyncio.run(produce(plain, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e in events]))
        got = asyncio.run(consume(plain, [env.topics["enriched"]], 3, 90))[env.topics["enriched"]]
        assert sorted(r["product_id"] for r in got) == ["sasl-0", "sasl-1", "sasl-2"], worker.log_tail()
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    (delivery,) = [json.loads(line) for line in log.splitlines() if '"event": "delivery_settings"' in line]
    assert (delivery["security_protocol"], delivery["sasl_mechanism"], delivery["sasl_username"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        USER,
    )
    assert PASSWORD not in log

    bad = WorkerEnv(sasl_broker.sasl_bootstrap_servers, tmp_path, extra=_sasl_env("wrong-pw-123"))
    done = subprocess.run(catalog_cmd("worker"), env=bad.env, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    (failure,) = [json.loads(line) for line in output.splitlines() if '"event": "startup_failed"' in line]
    assert "CATALOG_KAFKA_SASL_PASSWORD" in failure["setting"]
    assert "Authentication failed" in failure["cause"]
    assert "wrong-pw-123" not in output
