"""The runner's own Kafka clients: a paced producer that rides out outages, and a live tail of outputs.

Why a live tail: the fault driver must know when a crashed worker produces again before it
injects the next fault. The auditor does not trust it; it re-reads every topic at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.chaos.workload import Msg


@dataclass
class Sent:
    """Where the broker put one acknowledged record."""

    msg: Msg
    partition: int
    offset: int
    at: float  # wall clock, seconds


class Feeder:
    """Sends scheduled messages; a failed send is sent again until the deadline (at-least-once input)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.sent: list[Sent] = []
        self.failures = 0
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            max_request_size=16_000_000,
            request_timeout_ms=10_000,
            linger_ms=5,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 15)
            self._producer = None

    async def _send_one(self, msg: Msg, deadline: float) -> None:
        assert self._producer is not None
        while True:
            try:
                future = await self._producer.send(msg.topic, key=msg.key, value=msg.value, partition=msg.partition)
                meta = await future
                self.sent.append(Sent(msg, meta.partition, meta.offset, time.time()))
                return
            except Exception:  # the broker is down or restarting: try again, bounded by the deadline
                self.failures += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def run(
        self,
        schedule: Sequence[tuple[float, Msg]],
        deadline: float,
        holds: dict[int, asyncio.Event] | None = None,
    ) -> None:
        """Send ``(seconds_from_start, msg)`` in order; before item ``i`` in ``holds``, wait for its event.

        Time spent waiting on a hold shifts the rest of the schedule, so the pace stays the same.
        """
        holds = holds or {}
        start = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        for i, (at, msg) in enumerate(schedule):
            if i in holds:
                waited = time.monotonic()
                await holds[i].wait()
                start += time.monotonic() - waited
            delay = start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._send_one(msg, deadline))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if len(pending) > 200:  # back-pressure while the broker is away
                await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.gather(*pending)

    def count(self, topic: str) -> int:
        return sum(1 for s in self.sent if s.msg.topic == topic)


@dataclass
class Output:
    """One output record seen on the enriched or dead-letter topic."""

    topic: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    ts: float  # Kafka timestamp, seconds


@dataclass
class Tail:
    """Consumes the output topics from the beginning for as long as a scenario runs."""

    bootstrap: str
    topics: list[str]
    outputs: list[Output] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=2000,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=300)
                for tp, records in batch.items():
                    for r in records:
                        source = _source(r.value)
                        self.outputs.append(Output(tp.topic, *source, r.timestamp / 1000.0))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    def answered(self, source_topic: str) -> set[tuple[int, int]]:
        """(partition, offset) of the inputs of ``source_topic`` that have an output."""
        return {
            (o.source_partition, o.source_offset)
            for o in self.outputs
            if o.source_topic == source_topic and o.source_partition is not None and o.source_offset is not None
        }

    def partitions_flowing_since(self, source_topic: str, since: float) -> set[int]:
        return {
            o.source_partition
            for o in self.outputs
            if o.source_topic == source_topic and o.ts >= since and o.source_partition is not None
        }


def _source(value: bytes | None) -> tuple[str | None, int | None, int | None]:
    try:
        src = json.loads(value or b"").get("source") or {}
        return src.get("topic"), src.get("partition"), src.get("offset")
    except (ValueError, AttributeError):
        return None, None, None


async def wait_recovered(
    feeder: Feeder, tail: Tail, topic: str, since: float, cap_s: float, settle: bool = False
) -> float | None:
    """Wait until every partition with unanswered input has an output stamped after ``since``.

    Returns the seconds waited, or None when ``cap_s`` passed first. With ``settle`` it
    waits instead until every input sent so far has an output.
    """
    start = time.monotonic()
    while time.monotonic() - start < cap_s:
        answered = tail.answered(topic)
        waiting = {s.partition for s in feeder.sent if s.msg.topic == topic and (s.partition, s.offset) not in answered}
        if settle:
            if not waiting:
                return time.monotonic() - start
        else:
            late = {s.partition for s in feeder.sent if s.msg.topic == topic and s.at >= since}
            if not (waiting | late) - tail.partitions_flowing_since(topic, since):
                return time.monotonic() - start
        await asyncio.sleep(0.25)
    return None


def by_partition(sent: Sequence[Sent]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for s in sent:
        counts[s.partition] += 1
    return dict(counts)
