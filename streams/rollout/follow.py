"""Tail the compacted models topic: every ``ModelActivated`` published after the one a worker started with.

No consumer group: each worker reads the whole topic itself (one partition, one key), from the
offset after the activation it read at start-up, so an activation published in between is not
missed. A record that is not a valid ``ModelActivated`` is handed on as an ``InvalidActivation``
(the controller refuses it with a log line); a tombstone is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import TopicPartition
from pydantic import ValidationError

from streams.activation import ActivationRecord
from streams.events import ACTIVATION_KEY, ModelActivated
from streams.kafka_clients import consumer
from streams.rollout.offsets import topic_partitions
from streams.settings import Settings

log = structlog.get_logger("catalog.rollout")


@dataclass(frozen=True)
class InvalidActivation:
    offset: int
    message: str


Handler = Callable[[ActivationRecord | InvalidActivation], Awaitable[None]]


async def follow_activations(
    settings: Settings, start: dict[int, int] | None, handle: Handler, poll_ms: int = 1000, retry_s: float = 2.0
) -> None:
    """Hand every activation at or after ``start`` (per partition; None: the topic's start) to ``handle``; forever.

    ``handle`` is awaited before the next record is read, so activations are followed one at a time,
    in order. A broker failure restarts the consumer after ``retry_s`` at the next unhandled offset.
    """
    positions = dict(start or {})
    while True:
        try:
            await _follow(settings, positions, handle, poll_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broker outage must not end the following
            log.warning("activations_follow_retry", error=f"{type(exc).__name__}: {exc}"[:300], retry_in_s=retry_s)
            await asyncio.sleep(retry_s)


async def _follow(settings: Settings, positions: dict[int, int], handle: Handler, poll_ms: int) -> None:
    """One consumer's life; ``positions`` (next offset per partition) advances as records are handled."""
    topic = settings.topic_models
    partitions: tuple[int, ...] = ()
    while not partitions:  # created at worker start-up; wait for its metadata rather than auto-create it
        partitions = (await topic_partitions(settings, [topic])).get(topic, ())
        if not partitions:
            await asyncio.sleep(2.0)
    tps = [TopicPartition(topic, p) for p in partitions]
    client = consumer(settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await client.start()
    try:
        client.assign(tps)
        for tp in tps:
            if tp.partition in positions:
                client.seek(tp, positions[tp.partition])
            else:  # no start given, or a partition that did not exist at start-up: all of it is new
                await client.seek_to_beginning(tp)
        log.info("activations_followed", topic=topic, positions={tp.partition: await client.position(tp) for tp in tps})
        while True:
            batch = await client.getmany(*tps, timeout_ms=poll_ms)
            for tp, records in sorted(batch.items(), key=lambda kv: kv[0].partition):
                for record in records:
                    await _hand_on(tp, record, handle)
                    positions[tp.partition] = record.offset + 1
    finally:
        await client.stop()


async def _hand_on(tp: TopicPartition, record: Any, handle: Handler) -> None:
    if record.key != ACTIVATION_KEY or record.value is None:
        return
    try:
        event = ModelActivated.model_validate_json(record.value)
    except ValidationError as exc:
        await handle(InvalidActivation(record.offset, str(exc)[:500]))
        return
    await handle(ActivationRecord(event, tp.topic, tp.partition, record.offset))
