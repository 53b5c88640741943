"""The example consumer, run as a user would, against the real broker: duplicates are dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.events import ImageEnriched
from tests.unit.test_schema_agreement import ENRICHED

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "enriched_consumer.py"


def enriched(event_id: str, product_id: str, processed_at: str, label: str) -> bytes:
    value = {**ENRICHED, "event_id": event_id, "product_id": product_id, "processed_at": processed_at,
             "category": {**ENRICHED["category"], "label": label}}  # fmt: skip
    ImageEnriched.model_validate_json(json.dumps(value))  # the example reads the real contract
    return json.dumps(value).encode()


async def test_example_consumer_dedupes_by_event_id_and_keeps_the_newest(kafka_bootstrap_servers, topic_factory):
    topic = await topic_factory("enriched", partitions=2)
    values = [
        enriched("e1", "p1", "2024-05-01T12:00:01Z", "shoes"),
        enriched("e1", "p1", "2024-05-01T12:00:01Z", "shoes"),  # redelivered after a crash
        enriched("e2", "p2", "2024-05-01T12:00:02Z", "bags"),
        enriched("e3", "p1", "2024-05-01T12:00:05Z", "clothing"),  # a newer image of p1
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=json.loads(v)["product_id"].encode(), partition=0)
    finally:
        await producer.stop()
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--bootstrap", kafka_bootstrap_servers, "--topic", topic,
         "--from-beginning", "--idle-s", "3"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    stored, summary = lines[:-1], lines[-1]
    assert [r["event_id"] for r in stored] == ["e1", "e2", "e3"]
    assert summary == {"products": 2, "duplicates_skipped": 1}
    assert stored[-1]["category"] == "clothing" and stored[-1]["model"] == "student@17"
