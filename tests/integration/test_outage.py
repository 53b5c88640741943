"""Transient failures pause the stream; they never drain the input into the dead-letter topic."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.milvus.lite_server import MilvusLiteServer
from infra.milvus.server import MilvusServer, ServerConfig
from tests.support.events import encode, good_event
from tests.support.worker import WorkerEnv, WorkerProcess, consume, produce

pytestmark = pytest.mark.integration


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0)
    finally:
        await admin.close()


def _enriched(env: WorkerEnv, prefix: str, n: int, timeout: float) -> list[dict]:
    topic = env.topics["enriched"]
    got = asyncio.run(
        consume(
            env.bootstrap,
            [topic],
            lambda g: sum(r["product_id"].startswith(prefix) for r in g[topic]) >= n,
            timeout,
        )
    )
    return [r for r in got[topic] if r["product_id"].startswith(prefix)]


def _own_milvus(backend: str, data_dir: Path) -> MilvusLiteServer | MilvusServer:
    """A server this test may stop and restart (same port, same data): Lite's, or a real Milvus 2.3.

    Always one of its own, never the session's shared server (or a ``MILVUS_URI`` one): it is stopped.
    """
    if backend == "lite":
        return MilvusLiteServer(data_dir).start()
    return MilvusServer(ServerConfig(data_dir=data_dir, stop_with_parent=True)).start()


def test_milvus_outage_pauses_then_resumes_without_dead_letters(
    kafka_bootstrap_servers: str, tmp_path: Path, milvus_backend: str
) -> None:
    milvus = _own_milvus(milvus_backend, tmp_path / "milvus")
    env = WorkerEnv(kafka_bootstrap_servers, tmp_path, extra={"CATALOG_MILVUS_URI": milvus.uri})
    worker = None
    try:
        env.run("gallery", "load", "--limit", "200")
        worker = WorkerProcess(env).start()
        warm = [good_event(i, product_id=f"warm-{i}")[0] for i in range(5)]
        asyncio.run(produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e in warm]))
        assert len(_enriched(env, "warm-", 5, 90)) == 5, worker.log_tail()
        time.sleep(2.5)  # let the periodic commit record the warm-up offsets
        group = env.env["CATALOG_APP_ID"]
        before = asyncio.run(committed_total(env.bootstrap, group, env.topics["images"]))
        assert before == 5

        milvus.stop()
        during = [good_event(20 + i, product_id=f"outage-{i}")[0] for i in range(10)]
        asyncio.run(
            produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e in during])
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.metric("catalog_transient_retries_total") < 2:
            time.sleep(0.5)
        assert worker.metric("catalog_transient_retries_total") >= 2, worker.log_tail()
        assert worker.alive()
        assert _enriched(env, "outage-", 1, 3) == []
        dlq = asyncio.run(consume(env.bootstrap, [env.topics["dlq"]], 1, 2))[env.topics["dlq"]]
        assert dlq == [], "an outage must never dead-letter good input"
        assert asyncio.run(committed_total(env.bootstrap, group, env.topics["images"])) == before

        milvus.start()  # same port, same data: the worker reconnects by itself
        assert len(_enriched(env, "outage-", 10, 120)) == 10, worker.log_tail()
        dlq = asyncio.run(consume(env.bootstrap, [env.topics["dlq"]], 1, 2))[env.topics["dlq"]]
        assert dlq == []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if asyncio.run(committed_total(env.bootstrap, group, env.topics["images"])) == 15:
                break
            time.sleep(0.5)
        assert asyncio.run(committed_total(env.bootstrap, group, env.topics["images"])) == 15
    finally:
        if worker is not None:
            worker.stop()
        milvus.stop()
