"""The console for tests: its harness (``infra.harness.console_stack``) and reading the models topic back.

Nothing here writes into the repository: registries, activation logs and Milvus Lite files live in
the test's tmp folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra.harness.console_stack import ConsoleServer, copy_version

__all__ = ["ConsoleServer", "Record", "copy_version", "topic_records"]


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


async def topic_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Record]:
    """Every record of a one-partition topic, read to its end offset at the time of the call."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 1, described
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list[Record] = []
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                out.extend(Record(r.offset, r.key, r.value) for r in records if r.offset < end)
    finally:
        await consumer.stop()
    return out
