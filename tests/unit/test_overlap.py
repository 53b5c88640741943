"""ImageFlow + BatchHandler with several batches in flight: stand-in stages and publisher, no broker.

What is checked: outputs and acks leave in arrival order although later batches finish their
work first; the index stage never holds two batches; acks come only after Kafka acknowledged;
at most ``in_flight`` batches are held and a stalled stage stops the intake (back-pressure);
``in_flight`` = 1 runs one batch after the other; a bug in one stage costs only its culprit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processors.errors import ProcessingError, TransientFailure
from processors.knn_vote import CategoryVote
from processors.requests import Enrichment, ImageRequest
from processors.staging import BatchStage
from streams.metrics import WorkerMetrics
from streams.overlap import ImageFlow
from streams.retry import Backoff
from streams.worker import BatchHandler, Outgoing, RawEvent, Topics
from tests.support.events import encode, submitted

VOTE = CategoryVote(label="shoes", vote_share=1.0, votes={"shoes": 1}, k=1)


@dataclass(frozen=True)
class Work:
    request: ImageRequest


class Stages:
    """intake -> models -> index; per-product delays and failures; records who is in each stage."""

    def __init__(self, delays: dict[str, dict[str, float]] | None = None, index_outage: int = 0) -> None:
        self.delays = delays or {}
        self.index_outage = index_outage  # the first N index calls raise TransientFailure
        self.inside: dict[str, set[str]] = {"intake": set(), "models": set(), "index": set()}
        self.index_order: list[str] = []
        self.overlapped = False

    async def _step(self, stage: str, items: list[Any]) -> None:
        batch = items[0].request.product_id.split("-")[0]
        self.inside[stage].add(batch)
        assert len(self.inside[stage]) == 1, f"{stage} holds {self.inside[stage]}"
        self.overlapped |= sum(bool(v) for v in self.inside.values()) >= 2
        await asyncio.sleep(max(self.delays.get(r.request.product_id, {}).get(stage, 0.001) for r in items))
        self.inside[stage].discard(batch)

    async def intake(self, requests: list[ImageRequest], timings: dict[str, float]) -> list[Work]:
        works = [Work(r) for r in requests]
        await self._step("intake", works)
        return works

    async def models(self, items: list[Work], timings: dict[str, float]) -> list[Work]:
        if any(w.request.product_id.endswith("boom") for w in items):
            raise RuntimeError("a bug that only this image triggers")
        await self._step("models", items)
        return items

    async def index(self, items: list[Work], timings: dict[str, float]) -> list[Enrichment]:
        if self.index_outage > 0:
            self.index_outage -= 1
            raise TransientFailure("milvus_unavailable", "down", stage="index")
        await self._step("index", items)
        self.index_order += [w.request.product_id for w in items]
        return [Enrichment(w.request, "m", "1", VOTE, (), 8, 8, timings) for w in items]

    def as_stages(self) -> list[BatchStage]:
        return [BatchStage("intake", self.intake), BatchStage("models", self.models), BatchStage("index", self.index)]


class SlowKafka:
    """Acknowledges every send after ``delay``; records the order of sends and the moment of each ack."""

    def __init__(self, delay: float = 0.002, outage_for: str = "", outage_sends: int = 0) -> None:
        self.delay = delay
        self.outage_for, self.outage_sends = outage_for, outage_sends  # refuse sends of these keys N times
        self.sent: list[str] = []
        self.topics: list[str] = []
        self.acknowledged: set[str] = set()

    async def publish(self, messages: Sequence[Outgoing]) -> list[ProcessingError | None]:
        ids = [json.loads(m.value).get("product_id") for m in messages]
        await asyncio.sleep(self.delay)
        if self.outage_sends > 0 and any(i.startswith(self.outage_for) for i in ids):
            self.outage_sends -= 1
            return [TransientFailure("kafka_produce_failed", "broker away", stage="publish")] * len(messages)
        self.sent += ids
        self.topics += [m.topic for m in messages]
        self.acknowledged.update(ids)
        return [None] * len(messages)


async def _unguarded(action: Any) -> Any:
    return await action()


def _image(product_id: str) -> bytes:
    return encode(submitted(product_id, image_url="https://img.example.com/x.jpg"))


def _batch(name: str, n: int, partition: int = 0, first_offset: int = 0) -> list[RawEvent]:
    return [
        RawEvent("images", partition, first_offset + i, f"{name}-{i}".encode(), _image(f"{name}-{i}")) for i in range(n)
    ]


async def _flow_run(
    batches: list[list[RawEvent]], stages: Stages, kafka: SlowKafka, in_flight: int
) -> tuple[list[str], int, WorkerMetrics]:
    metrics = WorkerMetrics()
    handler = BatchHandler(
        None,
        kafka,
        Topics("out", "dlq"),
        metrics,
        Backoff(0.001, 0.002),
        stages=stages.as_stages(),  # type: ignore[arg-type]
    )
    flow = ImageFlow(handler, in_flight, _unguarded, metrics)
    acked: list[str] = []
    most = 0

    async def sample() -> None:  # the most batches held at once, seen every millisecond
        nonlocal most
        while True:
            most = max(most, flow.in_flight)
            await asyncio.sleep(0.001)

    sampler = asyncio.create_task(sample())
    for events in batches:

        async def ack(events: list[RawEvent] = events) -> None:
            for e in events:
                assert e.key is not None and e.key.decode() in kafka.acknowledged, "acked before Kafka acknowledged"
                acked.append(e.key.decode())

        await flow.submit(events, ack)
    await flow.drain()
    sampler.cancel()
    return acked, most, metrics


def test_outputs_and_acks_keep_arrival_order_when_later_batches_finish_first() -> None:
    slow = {f"a-{i}": {"intake": 0.08} for i in range(4)} | {f"b-{i}": {"models": 0.05} for i in range(4)}
    stages, kafka = Stages(slow), SlowKafka()
    batches = [_batch(name, 4, first_offset=4 * k) for k, name in enumerate("abcdef")]
    acked, most, metrics = asyncio.run(_flow_run(batches, stages, kafka, in_flight=3))
    expected = [f"{name}-{i}" for name in "abcdef" for i in range(4)]
    assert kafka.sent == expected
    assert acked == expected
    assert stages.index_order == expected
    assert most == 3 and stages.overlapped
    assert metrics.batches_overlapped._value.get() >= 3


def test_a_batch_whose_publish_is_retried_is_not_overtaken() -> None:
    stages, kafka = Stages(), SlowKafka(outage_for="a-", outage_sends=30)  # Kafka refuses batch a for a while
    batches = [_batch(name, 2, first_offset=2 * k) for k, name in enumerate("abc")]
    acked, _, _ = asyncio.run(_flow_run(batches, stages, kafka, in_flight=3))
    assert kafka.sent == acked == ["a-0", "a-1", "b-0", "b-1", "c-0", "c-1"]


def test_one_in_flight_is_one_batch_after_the_other() -> None:
    stages, kafka = Stages(), SlowKafka()
    batches = [_batch(name, 3) for name in "abcd"]
    acked, most, metrics = asyncio.run(_flow_run(batches, stages, kafka, in_flight=1))
    assert acked == kafka.sent == [f"{n}-{i}" for n in "abcd" for i in range(3)]
    assert most == 1 and not stages.overlapped
    assert metrics.batches_overlapped._value.get() == 0


def test_a_stalled_index_fills_the_slots_and_stops_the_intake() -> None:
    async def scenario() -> tuple[int, list[str]]:
        stages, kafka = Stages(index_outage=10**9), SlowKafka()  # Milvus down until we say so
        metrics = WorkerMetrics()
        handler = BatchHandler(
            None,
            kafka,
            Topics("out", "dlq"),
            metrics,
            Backoff(0.001, 0.002),
            stages=stages.as_stages(),  # type: ignore[arg-type]
        )
        flow = ImageFlow(handler, 2, _unguarded, metrics)
        submitted_batches = 0

        async def feed() -> None:
            nonlocal submitted_batches
            for name in "abcdef":
                await flow.submit(_batch(name, 2), _no_acks)
                submitted_batches += 1

        feeder = asyncio.create_task(feed())
        await asyncio.sleep(0.3)
        held = submitted_batches
        assert kafka.sent == [] and metrics.transient_retries.labels(error_code="milvus_unavailable")._value.get() > 3
        stages.index_outage = 0  # Milvus is back
        await asyncio.wait_for(feeder, 10)
        await flow.drain()
        return held, kafka.sent

    held, sent = asyncio.run(scenario())
    assert held == 1, "with 2 in flight and the index stalled, the second submit must wait"
    assert sent == [f"{n}-{i}" for n in "abcdef" for i in range(2)]


async def _no_acks() -> None:
    return None


def test_a_bug_in_one_stage_dead_letters_its_culprit_only() -> None:
    stages, kafka = Stages(), SlowKafka()
    events = _batch("a", 3) + [RawEvent("images", 0, 3, b"a-boom", _image("a-boom"))]
    acked, _, metrics = asyncio.run(_flow_run([events, _batch("b", 2, first_offset=4)], stages, kafka, in_flight=2))
    assert kafka.sent == ["a-0", "a-1", "a-2", "a-boom", "b-0", "b-1"]
    assert kafka.topics == ["out", "out", "out", "dlq", "out", "out"]
    assert acked == ["a-0", "a-1", "a-2", "a-boom", "b-0", "b-1"]
    assert metrics.internal_errors.labels(stage="process")._value.get() == 1
