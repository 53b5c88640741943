"""faust wiring: ``create_app(settings)`` builds a fresh app with its two agents.

Nothing here runs at import time, so every test (and every worker) gets its own app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import structlog

from processors.pipeline import EnrichmentPipeline
from streams.metrics import WorkerMetrics
from streams.pipeline_factory import build_pipeline
from streams.publisher import FaustPublisher
from streams.retry import Backoff
from streams.settings import Settings
from streams.worker import BatchHandler, HandlerLimits, RawEvent, Topics

T = TypeVar("T")
log = structlog.get_logger("catalog.app")


def _raw(event: Any) -> RawEvent:
    msg = event.message
    return RawEvent(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value)


class _Runtime:
    """Builds the pipeline once, inside the worker's event loop, on first use."""

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics,
        topics: dict[str, faust.TopicT],
        pipeline_builder: Callable[[Settings], EnrichmentPipeline],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topics = topics
        self.pipeline_builder = pipeline_builder
        self._handler: BatchHandler | None = None
        self._lock = asyncio.Lock()

    async def handler(self) -> BatchHandler:
        async with self._lock:
            if self._handler is None:
                pipeline = await asyncio.to_thread(self.pipeline_builder, self.settings)
                from streams.retry import retry_transient

                await retry_transient(pipeline.start, self._backoff())
                self.metrics.models.info(pipeline.served_models())
                self._handler = BatchHandler(
                    pipeline,
                    FaustPublisher(self.topics),
                    Topics(enriched=self.settings.topic_enriched, dlq=self.settings.topic_dlq),
                    self.metrics,
                    self._backoff(),
                    HandlerLimits(
                        dlq_max_copied_value=self.settings.dlq_max_copied_value_bytes,
                        label_wait_s=self.settings.label_wait_s,
                    ),
                )
            return self._handler

    def ready_handler(self) -> BatchHandler | None:
        return self._handler

    async def until_handled(self, action: Callable[[], Awaitable[T]]) -> T:
        """Never acknowledge a batch whose handling raised: log, count, back off, and handle it again.

        The handler turns every input problem into a dead letter, so what reaches here is our own
        bug or an outage; the batch stays un-acked rather than skipped.
        """
        delays = self._backoff().delays()
        while True:
            try:
                return await action()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = next(delays)
                self.metrics.internal_errors.labels(stage="batch").inc()
                log.error("batch_handler_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
                await asyncio.sleep(delay)

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.retry_backoff_initial_s, self.settings.retry_backoff_max_s)


def create_app(
    settings: Settings,
    metrics: WorkerMetrics | None = None,
    pipeline_builder: Callable[[Settings], EnrichmentPipeline] = build_pipeline,
) -> faust.App:
    settings.worker_state_dir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.worker_state_dir / settings.app_id),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_buffer_maxsize=max(4 * settings.batch_max_size, 256),
        broker_commit_every=max(settings.batch_max_size, 100),
        broker_commit_interval=1.0,
        stream_wait_empty=False,  # un-acked events are simply redelivered; never block shutdown on them
    )
    names = (settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels)
    topics = {n: app.topic(n, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions) for n in names}
    runtime = _Runtime(settings, metrics or WorkerMetrics(), topics, pipeline_builder)
    max_size, within = settings.batch_max_size, settings.batch_max_wait_s

    held_labels: dict[tuple[str, int, int], tuple[faust.StreamT, Any]] = {}

    @app.agent(topics[settings.topic_images], name="enrich_images")
    async def enrich_images(stream: faust.StreamT) -> None:
        handler = await runtime.handler()
        async for events in stream.noack_take(max_size, within=within):
            raws = [_raw(e) for e in events]
            await runtime.until_handled(lambda raws=raws: handler.handle_images(raws))
            for event in events:  # only now: the outputs are acknowledged by Kafka
                await stream.ack(event)

    @app.agent(topics[settings.topic_labels], name="apply_labels")
    async def apply_labels(stream: faust.StreamT) -> None:
        handler = await runtime.handler()
        async for events in stream.noack_take(max_size, within=within):
            raws = [_raw(e) for e in events]
            held = await runtime.until_handled(lambda raws=raws: handler.handle_labels(raws))
            for event, raw in zip(events, raws, strict=True):
                ref = (raw.topic, raw.partition, raw.offset)
                if ref in held:  # its image has not arrived: acked when it does, or when dead-lettered
                    held_labels[ref] = (stream, event)
                else:
                    await stream.ack(event)

    @app.timer(settings.label_recheck_interval_s)
    async def release_labels() -> None:
        handler = runtime.ready_handler()
        if handler is None or not held_labels:
            return
        assigned = app.consumer.assignment()

        def owned(event: RawEvent) -> bool:
            return any(tp.topic == event.topic and tp.partition == event.partition for tp in assigned)

        released = await runtime.until_handled(lambda: handler.recheck_labels(owned))
        for ref in [r for r in held_labels if r not in handler.pending_labels or r in released]:
            stream, event = held_labels.pop(ref)
            if ref in released:
                await stream.ack(event)

    app.catalog_runtime = runtime  # type: ignore[attr-defined]  # for introspection in tests
    return app
