"""``catalog dlq replay``: re-publish chosen dead letters to the topic they came from.

Why: a dead letter is only useful if it can go back once its cause is fixed (a seller's
server is up again, a bug is fixed, an image arrived after its label). The letter carries
the original key and value, so replay is exact; a letter that kept only a prefix of a
too-large value cannot be replayed and is reported, never half-sent.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from streams.events import DeadLetter
from streams.kafka_clients import client_kwargs
from streams.settings import Settings


@dataclass(frozen=True)
class ReplayFilter:
    """All given criteria must hold; an empty criterion matches everything."""

    codes: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    source_topics: frozenset[str] = frozenset()

    def matches(self, letter: DeadLetter, key: str | None) -> bool:
        if self.codes and letter.error_code not in self.codes:
            return False
        if self.keys and key not in self.keys and letter.product_id not in self.keys:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        if self.until is not None and letter.failed_at >= self.until:
            return False
        return not self.source_topics or letter.source.topic in self.source_topics


@dataclass
class ReplayReport:
    scanned: int = 0
    matched: int = 0
    replayed: int = 0
    not_replayable: int = 0
    unreadable: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)


def replayable(letter: DeadLetter) -> tuple[bytes | None, bytes] | None:
    """The original key and value, or None when the letter kept only part of them."""
    if letter.original_truncated:
        return None
    key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 is not None else None
    return key, base64.b64decode(letter.original_value_b64)


async def replay(settings: Settings, selection: ReplayFilter, dry_run: bool = False) -> ReplayReport:
    """Read the dead-letter topic up to its current end and re-publish what ``selection`` picks."""
    report = ReplayReport()
    kafka = client_kwargs(settings)
    consumer = AIOKafkaConsumer(
        settings.topic_dlq, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest", **kafka
    )
    producer = None if dry_run else AIOKafkaProducer(acks="all", enable_idempotence=True, **kafka)
    await consumer.start()
    if producer is not None:
        await producer.start()
    try:
        partitions = await _assigned(consumer, settings.topic_dlq)
        if not partitions:
            return report
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)  # a snapshot: letters written meanwhile wait for the next run
        pending = []
        while await _behind(consumer, end):
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue
                    report.scanned += 1
                    try:
                        letter = DeadLetter.model_validate_json(record.value or b"")
                    except ValidationError:
                        report.unreadable += 1
                        continue
                    key = record.key.decode(errors="replace") if record.key is not None else None
                    if not selection.matches(letter, key):
                        continue
                    report.matched += 1
                    report.by_code[letter.error_code] = report.by_code.get(letter.error_code, 0) + 1
                    original = replayable(letter)
                    if original is None:
                        report.not_replayable += 1
                        continue
                    topic = letter.source.topic
                    report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
                    if producer is not None:
                        pending.append(await producer.send(topic, key=original[0], value=original[1]))
        for future in pending:
            await future
            report.replayed += 1
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return report


async def _behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, last in end.items():
        if await consumer.position(tp) < last:
            return True
    return False


async def _assigned(consumer: AIOKafkaConsumer, topic: str, timeout_s: float = 15.0) -> list[TopicPartition]:
    """Without a group, the consumer assigns itself every partition once it has the topic's metadata."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if topic not in await consumer.topics():
            return []
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if assigned:
            return assigned
        await asyncio.sleep(0.1)
    return []


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601 with a timezone, as the letters' ``failed_at`` carries."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r}: give a timezone, e.g. 2026-12-01T10:00:00+00:00")
    return value


def build_filter(
    codes: Sequence[str], keys: Sequence[str], since: str | None, until: str | None, topics: Sequence[str]
) -> ReplayFilter:
    return ReplayFilter(
        codes=frozenset(codes),
        keys=frozenset(keys),
        since=parse_time(since),
        until=parse_time(until),
        source_topics=frozenset(topics),
    )
