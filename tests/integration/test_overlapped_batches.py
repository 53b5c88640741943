"""Several image batches in flight (``CATALOG_PIPELINE_IN_FLIGHT=3``, two of them in the models at once):
real broker, real Milvus Lite, real worker.

What is checked: each partition's outputs leave in input-offset order although some batches
take far longer to decode than the ones behind them (slow URLs), and a kill -9 while batches
are in flight loses no input: after a restart every input has its output and the committed
offsets reach the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymilvus import MilvusClient

from processors.vector_index import collection_name
from streams.settings import Settings
from tests.support.events import encode, good_event, image_bytes, sample_item, submitted
from tests.support.http_images import ImageHttpServer
from tests.support.worker import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration
IN_FLIGHT = {
    "CATALOG_PIPELINE_IN_FLIGHT": "3",
    "CATALOG_INFERENCE_LANES": "2",  # two batches in the models at once, whatever the cores
    "CATALOG_BATCH_MAX_SIZE": "8",
    "CATALOG_BATCH_MAX_WAIT_S": "0.1",
}


@dataclass(frozen=True)
class Output:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    source_partition: int
    source_offset: int


async def _produce(bootstrap: str, topic: str, messages: list[tuple[int, bytes, bytes]]) -> None:
    """(partition, key, value) each to its own partition, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16_000_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v, partition=p) for p, k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _outputs(bootstrap: str, topics: list[str], inputs: int, timeout: float) -> list[Output]:
    """Every record of ``topics`` until each of ``inputs`` source offsets has an answer (or the timeout)."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    got: list[Output] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len({(o.source_partition, o.source_offset) for o in got}) < inputs:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                for m in records:
                    source = json.loads(m.value)["source"]
                    got.append(
                        Output(tp.topic, tp.partition, m.offset, m.timestamp, source["partition"], source["offset"])
                    )
    finally:
        await consumer.stop()
    return sorted(got, key=lambda o: (o.topic, o.partition, o.offset))


async def _committed(env: WorkerEnv) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(env.group)
        return sum(m.offset for tp, m in offsets.items() if tp.topic == env.topics["images"] and m.offset >= 0)
    finally:
        await admin.close()


def _wait_committed(env: WorkerEnv, total: int, timeout: float) -> int:
    deadline, seen = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        seen = asyncio.run(_committed(env))
        if seen >= total:
            break
        time.sleep(0.5)
    return seen


def _good(product_id: str, index: int) -> bytes:
    return encode(good_event(index % 500, product_id=product_id)[0])


@pytest.mark.timeout(600)
def test_each_partition_keeps_input_order_with_batches_in_flight(
    kafka_bootstrap_servers: str, tmp_path: Path, image_server: ImageHttpServer
) -> None:
    env = WorkerEnv(
        kafka_bootstrap_servers,
        tmp_path,
        extra={
            **IN_FLIGHT,
            "CATALOG_PRIVATE_HOST_ALLOWLIST": '["127.0.0.1"]',
            "CATALOG_FETCH_TIMEOUT_S": "1.0",
            "CATALOG_FETCH_ATTEMPTS": "1",
        },
    )
    env.run("gallery", "load", "--limit", "200")
    pixels, _ = sample_item(3)
    (image_server.root / "ordered.jpg").write_bytes(image_bytes(pixels))
    worker = WorkerProcess(env).start()
    try:
        messages: list[tuple[int, bytes, bytes]] = []
        for partition in (0, 1):
            for j in range(96):
                key = f"ord-{partition}-{j}"
                if j % 24 == 5:  # a batch that waits 1 s on a slow server: the batches behind it are done first
                    value = encode(submitted(key, image_url=f"{image_server.base_url}/slow/{key}.jpg"))
                elif j % 11 == 7:  # dead-lettered at once, no model work
                    value = b"{not json"
                elif j % 13 == 4:  # a URL image: another route through intake
                    value = encode(submitted(key, image_url=f"{image_server.base_url}/ordered.jpg"))
                else:
                    value = _good(key, j)
                messages.append((partition, key.encode(), value))
        asyncio.run(_produce(env.bootstrap, env.topics["images"], messages))
        topics = [env.topics["enriched"], env.topics["dlq"]]
        outputs = asyncio.run(_outputs(env.bootstrap, topics, len(messages), timeout=240))
        overlapped = worker.metric("catalog_batches_overlapped_total")
    finally:
        worker.stop()

    answered = defaultdict(list)
    for o in outputs:
        answered[(o.source_partition, o.source_offset)].append(o)
    assert len(answered) == len(messages), f"{len(messages) - len(answered)} inputs unanswered\n{worker.log_tail()}"
    assert all(len(v) == 1 for v in answered.values()), "no crash, no rebalance: exactly one answer per input"
    assert overlapped >= 5, f"only {overlapped} batches overlapped: the test did not exercise batches in flight"
    assert sum(o.topic == topics[1] for o in outputs) >= 2 * (4 + 8), "slow URLs and poison must be dead-lettered"

    # within each output partition (log order is exact), one source partition's offsets only ever grow
    for (topic, out_partition), group in _grouped(outputs, lambda o: (o.topic, o.partition)).items():
        for source_partition, seq in _grouped(group, lambda o: o.source_partition).items():
            offsets = [o.source_offset for o in seq]
            assert offsets == sorted(offsets), f"{topic}[{out_partition}] from partition {source_partition}: {offsets}"
    # across the two topics: in input-offset order, the outputs were stamped by the worker's producer in order
    for source_partition, seq in _grouped(outputs, lambda o: o.source_partition).items():
        by_offset = sorted(seq, key=lambda o: o.source_offset)
        late = [
            (a.source_offset, b.source_offset)
            for a, b in zip(by_offset, by_offset[1:], strict=False)
            if b.timestamp_ms < a.timestamp_ms
        ]
        assert not late, f"partition {source_partition}: a later input was answered before an earlier one: {late}"


def _grouped(items: list[Output], key) -> dict:  # noqa: ANN001 - a small local helper
    out: dict = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out


def _milvus_count(db: Path) -> int:
    model_id, version = Settings.model_fields["model_ref"].default.split("@")
    client = MilvusClient(uri=str(db))
    try:
        name = collection_name("catalog", model_id, version)
        client.load_collection(name)
        return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])
    finally:
        client.close()


@pytest.mark.timeout(600)
def test_a_kill_with_batches_in_flight_loses_nothing(kafka_bootstrap_servers: str, tmp_path: Path) -> None:
    """Batches of 32, three in flight: a batch is held longer than the 1 s commit interval, so an ack
    given before its outputs were acknowledged would be committed before the kill and lose events."""
    env = WorkerEnv(kafka_bootstrap_servers, tmp_path, extra={**IN_FLIGHT, "CATALOG_BATCH_MAX_SIZE": "32"})
    env.run("gallery", "load", "--limit", "200")
    total = 640
    worker = WorkerProcess(env, name="first").start()
    try:
        messages = [(i % 2, f"kill-{i}".encode(), _good(f"kill-{i}", i)) for i in range(total)]
        asyncio.run(_produce(env.bootstrap, env.topics["images"], messages))
        deadline, in_flight, done_before = time.monotonic() + 120, 0.0, 0.0
        while time.monotonic() < deadline:  # mid-stream, with more than one batch held
            seen = worker.metrics("catalog_batches_in_flight", "catalog_events_out_total")
            in_flight, done_before = seen["catalog_batches_in_flight"], seen["catalog_events_out_total"]
            if in_flight >= 3 and done_before >= 96:
                break  # kill at once, on what this one scrape saw: a second read may find a batch finished
            time.sleep(0.05)
        worker.kill()
        assert in_flight >= 3, worker.log_tail()
        assert done_before < total, "the kill came after the end of the stream"
        worker = WorkerProcess(env, name="second").start()
        topics = [env.topics["enriched"], env.topics["dlq"]]
        outputs = asyncio.run(_outputs(env.bootstrap, topics, total, timeout=180))
        committed = _wait_committed(env, total, timeout=30)
    finally:
        worker.stop()

    answered = {(o.source_partition, o.source_offset) for o in outputs if o.topic == topics[0]}
    missing = {(p, off) for p in (0, 1) for off in range(total // 2)} - answered
    assert not missing, f"{len(missing)} inputs lost after the kill: {sorted(missing)[:10]}\n{worker.log_tail()}"
    assert not [o for o in outputs if o.topic == topics[1]], "a kill must never dead-letter good input"
    assert committed == total
    assert _milvus_count(tmp_path / "milvus.db") == 200 + total  # one row per product, none lost, none doubled
