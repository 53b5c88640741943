"""The re-index group's committed offsets are the rollout's progress (docs/rollout.md).

Pure arithmetic over one snapshot of a group's offsets, plus the one function that reads such a
snapshot from the broker. A partition of the images topic whose commit carries the metadata
``switched`` is served by the new model from that offset on: its re-index is over, it lags by 0.
The gallery topic is never switched (the worker does not consume it); it lags until drained.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.kafka_clients import admin, consumer
from streams.settings import Settings

T = TypeVar("T")
SWITCHED = "switched"  # commit metadata: this images partition is served by the new model from here on


def reindex_group_id(app_id: str, collection: str, activated_at: datetime) -> str:
    """One group per activation: ``<app_id>.reindex.<collection>.<activated_at, epoch ms>``.

    The activation time is part of it because a collection can be the target twice: a rollback
    to a kept collection must re-index the whole log again, not find the first rollout's
    ``switched`` commits and skip everything. Every worker reads the same activation, so all
    agree on the name.
    """
    return f"{app_id}.reindex.{collection}.{int(activated_at.timestamp() * 1000)}"


@dataclass(frozen=True)
class PartitionOffsets:
    """Where the re-index of one partition stands: committed position against the log's bounds."""

    topic: str
    partition: int
    start: int  # first offset still in the log (compaction and retention move it)
    end: int  # the next offset to be written
    committed: int | None  # None: no commit yet, the re-index starts at ``start``
    metadata: str = ""

    @property
    def switched(self) -> bool:
        return self.metadata == SWITCHED

    @property
    def position(self) -> int:
        return self.start if self.committed is None else max(self.committed, self.start)

    @property
    def lag(self) -> int:
        """Offsets still to re-index (compaction gaps count too: an upper bound of records)."""
        return 0 if self.switched else max(0, self.end - self.position)

    @property
    def done(self) -> int:
        return max(0, min(self.position, self.end) - self.start)

    @property
    def total(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class GroupOffsets:
    """One snapshot of a re-index group over its topics."""

    group_id: str
    partitions: tuple[PartitionOffsets, ...]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def done(self) -> int:
        return sum(p.done for p in self.partitions)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.partitions)

    def lag_of(self, topic: str) -> int:
        return sum(p.lag for p in self.partitions if p.topic == topic)

    def switched(self, topic: str) -> frozenset[int]:
        return frozenset(p.partition for p in self.partitions if p.topic == topic and p.switched)

    def partition_numbers(self, topic: str) -> frozenset[int]:
        return frozenset(p.partition for p in self.partitions if p.topic == topic)


def combine(
    group_id: str,
    start: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    committed: dict[TopicPartition, tuple[int, str]],
) -> GroupOffsets:
    """Join the three broker answers; a partition missing from ``committed`` has no commit yet."""
    rows = []
    for tp in sorted(end, key=lambda t: (t.topic, t.partition)):
        offset, metadata = committed.get(tp, (None, ""))
        rows.append(PartitionOffsets(tp.topic, tp.partition, start.get(tp, 0), end[tp], offset, metadata or ""))
    return GroupOffsets(group_id, tuple(rows))


async def committed_offsets(
    settings: Settings, group_id: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, tuple[int, str]]:
    """The group's commits (offset and metadata) for these partitions; a partition without one is left out."""
    wanted = list(partitions)
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    await client.start()
    try:
        answer = await _retriable(lambda: client.list_consumer_group_offsets(group_id, partitions=wanted),
                                  settings.startup_timeout_s)  # fmt: skip
    finally:
        await client.close()
    return {tp: (meta.offset, meta.metadata or "") for tp, meta in answer.items() if meta.offset >= 0}


async def topic_partitions(settings: Settings, topics: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Partition numbers of each of ``topics`` that exists (a missing one is left out, never auto-created)."""
    wanted = set(topics)
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    await client.start()
    try:
        described = await _retriable(client.describe_topics, settings.startup_timeout_s)  # all: naming may create
    finally:
        await client.close()
    return {
        t["topic"]: tuple(sorted(p["partition"] for p in t["partitions"]))
        for t in described
        if t["topic"] in wanted and t["error_code"] == 0
    }


async def _retriable(call: Callable[[], Awaitable[T]], budget_s: float) -> T:
    """Retry what the broker calls retriable (no group coordinator yet on a fresh cluster) within ``budget_s``."""
    deadline = time.monotonic() + budget_s
    delay = 0.1
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(2.0, delay * 2)


async def read_group_offsets(settings: Settings, group_id: str, topics: Iterable[str]) -> GroupOffsets:
    """Log bounds of every partition of ``topics`` and the group's commits, as one snapshot.

    A topic that does not exist contributes no partitions (a gallery never loaded is not lag).
    """
    layout = await topic_partitions(settings, topics)
    tps = [TopicPartition(topic, p) for topic, parts in layout.items() for p in parts]
    if not tps:
        return GroupOffsets(group_id, ())
    probe = consumer(settings, group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        start = await probe.beginning_offsets(tps)
        end = await probe.end_offsets(tps)
    finally:
        await probe.stop()
    return combine(group_id, start, end, await committed_offsets(settings, group_id, tps))
