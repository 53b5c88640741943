"""What the agents do with one micro-batch of Kafka events: parse, enrich, publish, then ack.

The faust wiring lives in ``streams.app``; this module only needs an object with
``send(topic, key, value)`` so the logic stays readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from processors.errors import InputRejected, TransientFailure
from processors.labels import LabelUpdate, apply_labels
from processors.pipeline import EnrichmentPipeline
from processors.requests import Enrichment, ImageRequest
from streams.decoding import parse_event, peek_ids
from streams.events import ImageSubmitted, LabelConfirmed, SourceRef
from streams.metrics import WorkerMetrics
from streams.output import dead_letter_event, enriched_event
from streams.retry import Backoff, retry_transient

log = structlog.get_logger("catalog.worker")


@dataclass(frozen=True)
class RawEvent:
    """The broker-independent view of one consumed message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> SourceRef:
        return SourceRef(topic=self.topic, partition=self.partition, offset=self.offset)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes


class Publisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Send all and wait for the broker's acknowledgement; raise TransientFailure on failure."""
        ...


@dataclass(frozen=True)
class Topics:
    enriched: str
    dlq: str


class BatchHandler:
    """Turns one batch of raw events into acknowledged output. Never raises for bad input."""

    def __init__(
        self,
        pipeline: EnrichmentPipeline,
        publisher: Publisher,
        topics: Topics,
        metrics: WorkerMetrics,
        backoff: Backoff,
    ) -> None:
        self.pipeline = pipeline
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.backoff = backoff

    def _dead_letter(self, event: RawEvent, error: InputRejected) -> Outgoing:
        event_id, product_id = peek_ids(event.value)
        letter = dead_letter_event(error, event.source, event.key, event.value, event_id, product_id)
        self.metrics.dead_lettered.labels(error_code=error.error_code).inc()
        log.info(
            "dead_lettered",
            error_code=error.error_code,
            stage=error.stage,
            event_id=event_id,
            product_id=product_id,
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
        )
        return Outgoing(self.topics.dlq, event.key, letter.model_dump_json().encode())

    async def _retrying(self, action: Callable[[], Awaitable[Any]]) -> Any:
        def count(exc: TransientFailure) -> None:
            self.metrics.transient_retries.labels(error_code=exc.error_code).inc()

        return await retry_transient(action, self.backoff, on_retry=count)

    async def handle_images(self, events: Sequence[RawEvent]) -> None:
        self.metrics.batch_size.observe(len(events))
        outgoing: list[Outgoing | None] = [None] * len(events)
        requests: list[tuple[int, ImageRequest]] = []
        for i, event in enumerate(events):
            self.metrics.events_in.labels(topic=event.topic).inc()
            try:
                submitted = parse_event(ImageSubmitted, event.value)
            except InputRejected as exc:
                outgoing[i] = self._dead_letter(event, exc)
                continue
            requests.append(
                (
                    i,
                    ImageRequest(
                        event_id=submitted.event_id,
                        product_id=submitted.product_id,
                        seller_id=submitted.seller_id,
                        image_url=submitted.image_url,
                        image_b64=submitted.image_b64,
                        scene=submitted.scene,
                        category_hint=submitted.category_hint,
                    ),
                )
            )
        if requests:
            outcomes = await self._retrying(lambda: self.pipeline.process_batch([r for _, r in requests]))
            for (slot, _), outcome in zip(requests, outcomes, strict=True):
                event = events[slot]
                if isinstance(outcome, Enrichment):
                    value = enriched_event(outcome, event.source).model_dump_json().encode()
                    outgoing[slot] = Outgoing(self.topics.enriched, event.key, value)
                    log.debug(
                        "enriched",
                        event_id=outcome.request.event_id,
                        product_id=outcome.request.product_id,
                        category=outcome.vote.label,
                    )
                else:
                    outgoing[slot] = self._dead_letter(event, outcome.error)
            if outcomes and isinstance(outcomes[0], Enrichment):
                self.metrics.observe_timings(outcomes[0].timings_ms)
        await self._publish([m for m in outgoing if m is not None])

    async def _publish(self, messages: list[Outgoing]) -> None:
        await self._retrying(lambda: self.publisher.publish(messages))
        for m in messages:
            self.metrics.events_out.labels(topic=m.topic).inc()

    async def handle_labels(self, events: Sequence[RawEvent]) -> None:
        self.metrics.batch_size.observe(len(events))
        outgoing: list[Outgoing] = []
        parsed: list[tuple[RawEvent, LabelConfirmed]] = []
        for event in events:
            self.metrics.events_in.labels(topic=event.topic).inc()
            try:
                parsed.append((event, parse_event(LabelConfirmed, event.value, stage="labels")))
            except InputRejected as exc:
                outgoing.append(self._dead_letter(event, exc))
        if parsed:
            updates = [LabelUpdate(p.product_id, p.category) for _, p in parsed]
            result = await self._retrying(lambda: self.pipeline.run_index(apply_labels, self.pipeline.index, updates))
            self.metrics.labels_applied.inc(len(result.applied))
            unknown = set(result.unknown)
            for event, label in parsed:
                if label.product_id in unknown:
                    error = InputRejected(
                        "label_unknown_product",
                        f"no image embedded for {label.product_id!r} yet; replay once it arrives",
                        stage="labels",
                    )
                    outgoing.append(self._dead_letter(event, error))
                else:
                    log.info("label_applied", product_id=label.product_id, category=label.category)
        await self._publish(outgoing)


async def gather_sends(futures: Sequence[Awaitable[Any]]) -> None:
    """Await every delivery; any failure becomes one TransientFailure so the batch is retried."""
    results = await asyncio.gather(*futures, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise TransientFailure(
            "kafka_produce_failed", f"{len(failures)} sends failed: {failures[0]!r}", stage="publish"
        )
