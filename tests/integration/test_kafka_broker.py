"""The test broker is a real Kafka: round trips with aiokafka and with kcat.

Why: every streaming test builds on this fixture layer; if these fail, look at the
broker (for the local backend: <tmp>/broker.log) before looking at the worker.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.kafka_backend import TopicFactory

pytestmark = pytest.mark.integration


async def _consume(consumer: AIOKafkaConsumer, expected: int, timeout: float = 30.0) -> list:
    """Read until ``expected`` records arrived, bounded by ``timeout``."""
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for part in batch.values():
            records.extend(part)
    return records


async def test_aiokafka_round_trip_keeps_per_key_order(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("roundtrip", partitions=3)
    keys = [f"product-{i}" for i in range(5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for seq in range(6):
            for key in keys:
                payload = json.dumps({"product_id": key, "seq": seq}).encode()
                await producer.send(topic, payload, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()

    group = f"test-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await _consume(consumer, 30)
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(3)]
    finally:
        await consumer.stop()

    assert len(records) == 30
    seqs: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        body = json.loads(record.value)
        assert record.key.decode() == body["product_id"]
        seqs[body["product_id"]].append(body["seq"])
        partitions[body["product_id"]].add(record.partition)
    assert all(seqs[key] == list(range(6)) for key in keys)  # same key -> in order
    assert all(len(p) == 1 for p in partitions.values())  # same key -> same partition
    assert sum(committed) == 30  # the group coordinator (__consumer_offsets, RF 1) works


async def test_transactional_producer_commits(kafka_bootstrap_servers: str, topic_factory: TopicFactory) -> None:
    """Transactions need the transaction-state topic (RF 1, min ISR 1) to be usable."""
    topic = await topic_factory("txn")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap_servers, transactional_id=f"txn-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap_servers,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        records = await _consume(consumer, 1)
    finally:
        await consumer.stop()
    assert [r.value for r in records] == [b"committed"]


def _kcat(*args: str, stdin: bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=timeout, check=False)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (apt-get install kcat)")
async def test_kcat_round_trip(kafka_bootstrap_servers: str, topic_factory: TopicFactory) -> None:
    topic = await topic_factory("kcat")
    event = {"event_id": str(uuid.uuid4()), "product_id": "p-42", "image_url": "file:///tmp/x.jpg"}
    line = json.dumps(event).encode() + b"\n"

    produced = await asyncio.to_thread(
        _kcat, "-b", kafka_bootstrap_servers, "-t", topic, "-P", "-k", event["product_id"], stdin=line
    )
    assert produced.returncode == 0, produced.stderr.decode()

    consumed = await asyncio.to_thread(
        _kcat,
        "-b",
        kafka_bootstrap_servers,
        "-t",
        topic,
        "-C",
        "-e",
        "-q",
        "-o",
        "beginning",
        "-c",
        "1",
        "-f",
        "%k\t%s\n",
    )
    assert consumed.returncode == 0, consumed.stderr.decode()
    key, value = consumed.stdout.decode().rstrip("\n").split("\t", 1)
    assert key == event["product_id"]
    assert json.loads(value) == event
