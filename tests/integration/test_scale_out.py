"""Several workers in one consumer group on the real broker, sharing one real Milvus server.

What must hold: every event comes out (dedupable by ``event_id``), the gallery holds exactly
one row per distinct product, a worker killed with SIGKILL mid-stream loses nothing because
the other takes its partitions over, and a label confirmed right before an upload of the
same product survives it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from processors.vector_index import alias_name
from tests.support.events import encode, good_event
from tests.support.worker import WorkerEnv, WorkerProcess, consume, free_port, produce

pytestmark = pytest.mark.integration
GALLERY = 300
PARTITIONS = 4


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


@pytest.fixture
def group(kafka_bootstrap_servers: str, milvus_server_uri: str, tmp_path: Path) -> Iterator[WorkerEnv]:
    prefix = f"scale_{uuid.uuid4().hex[:8]}"
    env = WorkerEnv(
        kafka_bootstrap_servers,
        tmp_path,
        extra={
            "CATALOG_MILVUS_URI": milvus_server_uri,
            "CATALOG_MILVUS_COLLECTION_PREFIX": prefix,
            "CATALOG_TOPIC_PARTITIONS": str(PARTITIONS),
            "CATALOG_BATCH_MAX_SIZE": "32",
            "CATALOG_QUALITY_MODE": "off",
            "CATALOG_LABEL_WAIT_S": "20",
        },
    )
    env.run("topics")
    env.run("gallery", "load", "--limit", str(GALLERY))
    yield env


def _worker(env: WorkerEnv, name: str) -> WorkerProcess:
    return WorkerProcess(
        env,
        overrides={
            "CATALOG_METRICS_PORT": str(free_port()),
            "CATALOG_WORKER_STATE_DIR": str(env.workdir / f"state-{name}"),
        },
        name=name,
    )


def _events(prefix: str, count: int, products: int) -> list[tuple[bytes, bytes, str]]:
    """``count`` uploads over ``products`` distinct products (repeats are re-uploads)."""
    out = []
    for i in range(count):
        pid = f"{prefix}-{i % products}"
        event, _ = good_event(i % 500, product_id=pid)
        out.append((pid.encode(), encode(event), event["event_id"]))
    return out


def _rows(uri: str, prefix: str) -> dict[str, dict]:
    client = MilvusClient(uri=uri)
    try:
        rows = client.query(
            alias_name(prefix),
            filter='product_id != ""',
            output_fields=["product_id", "category", "label_source"],
            consistency_level="Strong",
            limit=16384,
        )
        return {r["product_id"]: r for r in rows}
    finally:
        client.close()


def _outputs(env: WorkerEnv, expected_ids: set[str], timeout: float) -> list[dict]:
    topic = env.topics["enriched"]

    def done(got: dict[str, list[dict]]) -> bool:
        return expected_ids <= {r["event_id"] for r in got[topic]}

    return run(consume(env.bootstrap, [topic], done, timeout=timeout))[topic]


def test_two_workers_share_the_load_and_one_row_per_product(group: WorkerEnv, milvus_server_uri: str) -> None:
    first, second = _worker(group, "a").start(), _worker(group, "b").start()
    try:
        events = _events("two", 400, 300)
        run(produce(group.bootstrap, group.topics["images"], [(k, v) for k, v, _ in events]))
        out = _outputs(group, {e for _, _, e in events}, timeout=240)
        ids = [r["event_id"] for r in out]
        assert {e for _, _, e in events} <= set(ids), "an event came out of neither worker"
        assert first.metric("catalog_events_in_total") > 0 and second.metric("catalog_events_in_total") > 0
        prefix = group.env["CATALOG_MILVUS_COLLECTION_PREFIX"]
        rows = _rows(milvus_server_uri, prefix)
        uploaded = {r["product_id"] for r in out}
        assert uploaded <= set(rows)
        assert len(rows) == GALLERY + len(uploaded), "one row per distinct product, gallery included"
    finally:
        first.stop()
        second.stop()


def test_a_worker_killed_mid_stream_loses_nothing(group: WorkerEnv, milvus_server_uri: str) -> None:
    survivor, victim = _worker(group, "s").start(), _worker(group, "v").start()
    try:
        events = _events("kill", 600, 450)
        run(produce(group.bootstrap, group.topics["images"], [(k, v) for k, v, _ in events[:300]]))
        deadline = time.monotonic() + 60
        while victim.metric("catalog_events_out_total") < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        victim.kill()  # SIGKILL: no goodbye to the group, un-acked batches in flight
        run(produce(group.bootstrap, group.topics["images"], [(k, v) for k, v, _ in events[300:]]))
        out = _outputs(group, {e for _, _, e in events}, timeout=240)
        missing = {e for _, _, e in events} - {r["event_id"] for r in out}
        assert not missing, f"{len(missing)} events lost after the kill:\n{survivor.log_tail()}"
        assert survivor.alive()
        rows = _rows(milvus_server_uri, group.env["CATALOG_MILVUS_COLLECTION_PREFIX"])
        assert len(rows) == GALLERY + len({r["product_id"] for r in out})
    finally:
        survivor.stop()
        victim.stop()


def test_a_label_confirmed_right_before_an_upload_survives_it(group: WorkerEnv, milvus_server_uri: str) -> None:
    worker = _worker(group, "l").start()
    try:
        products = [f"lab-{i}" for i in range(40)]
        first = _events("lab", 40, 40)
        run(produce(group.bootstrap, group.topics["images"], [(k, v) for k, v, _ in first]))
        _outputs(group, {e for _, _, e in first}, timeout=120)
        labels = [
            (p.encode(), json.dumps({"schema_version": 1, "product_id": p, "category": f"c-{p}", "source": "ops"}))
            for p in products
        ]
        again = _events("lab", 40, 40)  # the same products uploaded again, at once after their labels
        run(produce(group.bootstrap, group.topics["labels"], [(k, v.encode()) for k, v in labels]))
        run(produce(group.bootstrap, group.topics["images"], [(k, v) for k, v, _ in again]))
        _outputs(group, {e for _, _, e in again}, timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = _rows(milvus_server_uri, group.env["CATALOG_MILVUS_COLLECTION_PREFIX"])
            if all(rows[p]["label_source"] == "confirmed" for p in products):
                break
            time.sleep(0.5)
        wrong = {p: rows[p]["label_source"] for p in products if rows[p]["label_source"] != "confirmed"}
        assert not wrong, f"labels downgraded by an upload: {wrong}\n{worker.log_tail()}"
        assert all(rows[p]["category"] == f"c-{p}" for p in products)
    finally:
        worker.stop()
