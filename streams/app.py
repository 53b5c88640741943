"""faust wiring: ``create_app(settings)`` builds a fresh app with its two agents.

Nothing here runs at import time, so every test (and every worker) gets its own app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import faust

from processors.pipeline import EnrichmentPipeline
from streams.metrics import WorkerMetrics
from streams.pipeline_factory import build_pipeline
from streams.retry import Backoff
from streams.settings import Settings
from streams.worker import BatchHandler, Outgoing, RawEvent, Topics, gather_sends


def _raw(event: Any) -> RawEvent:
    msg = event.message
    return RawEvent(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value)


class _FaustPublisher:
    def __init__(self, topics: dict[str, faust.TopicT]) -> None:
        self._topics = topics

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        from processors.errors import TransientFailure

        try:
            futures = [await self._topics[m.topic].send(key=m.key, value=m.value) for m in messages]
        except Exception as exc:  # faust/aiokafka raise many types; all are "the broker is unhappy"
            raise TransientFailure("kafka_produce_failed", repr(exc), stage="publish") from exc
        await gather_sends(futures)


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
                    _FaustPublisher(self.topics),
                    Topics(enriched=self.settings.topic_enriched, dlq=self.settings.topic_dlq),
                    self.metrics,
                    self._backoff(),
                )
            return self._handler

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

    @app.agent(topics[settings.topic_images], name="enrich_images")
    async def enrich_images(stream: faust.StreamT) -> None:
        handler = await runtime.handler()
        async for events in stream.noack_take(max_size, within=within):
            await handler.handle_images([_raw(e) for e in events])
            for event in events:  # only now: the outputs are acknowledged by Kafka
                await stream.ack(event)

    @app.agent(topics[settings.topic_labels], name="apply_labels")
    async def apply_labels(stream: faust.StreamT) -> None:
        handler = await runtime.handler()
        async for events in stream.noack_take(max_size, within=within):
            await handler.handle_labels([_raw(e) for e in events])
            for event in events:
                await stream.ack(event)

    app.catalog_runtime = runtime  # type: ignore[attr-defined]  # for introspection in tests
    return app
