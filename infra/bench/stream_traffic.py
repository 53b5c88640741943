"""The stream benchmark's Kafka side: publish uploads (all at once, or at a set rate) and collect the answers.

Why its own module: what is timed must be exactly what a seller's upload goes through. Events
are real ``ImageSubmitted`` values whose ``submitted_at`` is stamped just before the send; the
answer's time is the Kafka timestamp of the enriched (or dead-letter) record the worker wrote.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.events import ImageSubmitted

if TYPE_CHECKING:
    from streams.settings import Settings


@dataclass(frozen=True)
class Answer:
    """The first output seen for one event."""

    topic: str
    timestamp_ms: int
    timings: dict[str, float] | None


@dataclass
class Sent:
    """What one phase published: event id -> ``submitted_at`` in ms, and when the sends ran."""

    submitted_ms: dict[str, int] = field(default_factory=dict)
    first_send_ms: int = 0
    last_send_ms: int = 0

    @property
    def rate(self) -> float:
        """Events/s the producer achieved (0 for fewer than two events)."""
        span = (self.last_send_ms - self.first_send_ms) / 1000.0
        return round((len(self.submitted_ms) - 1) / span, 1) if span > 0 and len(self.submitted_ms) > 1 else 0.0


class Uploads:
    """Builds upload events from a pool of JPEG images (base64), cycling through it; product ids are unique."""

    def __init__(self, images_b64: Sequence[str], tag: str) -> None:
        if not images_b64:
            raise ValueError("need at least one image")
        self._images = list(images_b64)
        self._tag = tag
        self._count = 0

    def next(self) -> tuple[str, bytes, bytes, int]:
        """``(event_id, key, value, submitted_at ms)``, stamped now."""
        i = self._count
        self._count += 1
        now = datetime.now(UTC)
        event = ImageSubmitted(
            event_id=str(uuid.uuid4()),
            product_id=f"bench-{self._tag}-{i}",
            seller_id=f"seller-{i % 50}",
            image_b64=self._images[i % len(self._images)],
            submitted_at=now,
        )
        value = event.model_dump_json(exclude_none=True).encode()
        return event.event_id, event.product_id.encode(), value, int(now.timestamp() * 1000)


async def publish(
    producer: AIOKafkaProducer, topic: str, uploads: Uploads, count: int, rate: float | None = None
) -> Sent:
    """Send ``count`` uploads: as fast as the producer takes them (``rate`` None) or paced at ``rate``/s.

    Pacing is by schedule (event i leaves at start + i / rate), so a late send does not slow the
    rest; the sends are acknowledged (acks=all) before this returns.
    """
    sent = Sent()
    pending = []
    start = time.monotonic()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        event_id, key, value, submitted = uploads.next()
        pending.append(await producer.send(topic, value=value, key=key))
        sent.submitted_ms[event_id] = submitted
        if i == 0:
            sent.first_send_ms = submitted
        sent.last_send_ms = submitted
    await asyncio.gather(*pending)
    return sent


class AnswerCollector:
    """Reads the enriched and dead-letter topics from the start, keeping the first answer per event id."""

    def __init__(self, client_kwargs: dict[str, Any], enriched: str, dlq: str) -> None:
        self._consumer = AIOKafkaConsumer(
            enriched,
            dlq,
            **client_kwargs,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self._enriched = enriched
        self.answers: dict[str, Answer] = {}
        self.duplicates = 0
        self.unreadable = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    self._keep(tp.topic, record.timestamp, record.value)

    def _keep(self, topic: str, timestamp_ms: int, value: bytes | None) -> None:
        try:
            body = json.loads(value or b"")
            event_id = body["event_id"]
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        if event_id in self.answers:
            self.duplicates += 1
            return
        timings = body.get("timings") if topic == self._enriched else None
        self.answers[event_id] = Answer(topic, int(timestamp_ms), timings)

    async def wait_for(
        self, event_ids: Sequence[str] | set[str], stall_s: float, deadline: float, on_progress: Callable[[int], None]
    ) -> bool:
        """Wait until every id has an answer; False when no new answer came for ``stall_s`` or past ``deadline``.

        ``on_progress(answered)`` is called every 10 s while waiting.
        """
        wanted = set(event_ids)
        seen = -1
        last_progress = last_report = time.monotonic()
        while True:
            have = sum(1 for e in wanted if e in self.answers)
            if have == len(wanted):
                return True
            now = time.monotonic()
            if have != seen:
                seen, last_progress = have, now
            if now - last_report >= 10.0:
                on_progress(have)
                last_report = now
            if now - last_progress > stall_s or now > deadline:
                return False
            if self._task is not None and self._task.done():
                self._task.result()  # the reader died: say why
            await asyncio.sleep(0.5)


Collector = TypeVar("Collector", bound=AnswerCollector)


async def start_clients(settings: Settings, collector_type: type[Collector]) -> tuple[Collector, AIOKafkaProducer]:
    """The run's answer collector (``settings``' enriched and dead-letter topics) and upload producer, started;
    ``stop_clients`` stops them."""
    from streams.kafka_clients import client_kwargs

    kwargs = client_kwargs(settings)
    collector = collector_type(kwargs, settings.topic_enriched, settings.topic_dlq)
    producer = AIOKafkaProducer(**kwargs, acks="all", max_request_size=16_000_000, linger_ms=5)
    await collector.start()
    await producer.start()
    return collector, producer


async def stop_clients(collector: AnswerCollector, producer: AIOKafkaProducer) -> None:
    """The producer, then the collector."""
    await producer.stop()
    await collector.stop()
