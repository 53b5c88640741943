"""faust wiring: ``create_app(settings)`` builds a fresh app with its two agents.

Nothing here runs at import time, so every test (and every worker) gets its own app.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import faust
import structlog
from aiokafka.errors import KafkaError

from processors.pipeline import EnrichmentPipeline
from streams.consumer_lag import GroupCommits, committed_lag
from streams.faust_config import app_kwargs
from streams.health import HealthState
from streams.kafka_clients import admin as admin_client
from streams.metrics import WorkerMetrics
from streams.overlap import ImageFlow
from streams.pipeline_factory import build_pipeline
from streams.publisher import FaustPublisher
from streams.retry import Backoff
from streams.rollout.controller import RolloutController
from streams.rollout.serving import CountedHandler, Served
from streams.rollout.start_plan import StartPlan, plan_start
from streams.settings import Settings
from streams.startup import StartupError, milvus_setting_for, within_startup
from streams.topics import topic_configs
from streams.worker import BatchHandler, HandlerLimits, RawEvent, Topics

T = TypeVar("T")
log = structlog.get_logger("catalog.app")


def _raw(event: Any) -> RawEvent:
    msg = event.message
    return RawEvent(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value)


def _acker(stream: faust.StreamT, events: list[Any]) -> Callable[[], Awaitable[None]]:
    async def ack() -> None:  # only called once the events' outputs are acknowledged
        for event in events:
            await stream.ack(event)

    return ack


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
        self._pipeline: EnrichmentPipeline | None = None
        self.health = HealthState()  # run.py shares it with the /readyz endpoint
        self.on_startup_failure: Callable[[StartupError], None] | None = None  # run.py: stop the worker
        self.rollout: RolloutController | None = None  # follows ModelActivated (docs/rollout.md)
        self.owned: Callable[[], set[int]] = set  # images partitions the consumer holds (create_app sets it)

    async def _plan(self) -> StartPlan:
        """Start-up follows the log: the latest activation decides the model (CATALOG_MODEL_REF without one)."""
        from processors.errors import TransientFailure

        try:
            return await plan_start(self.settings)
        except (TimeoutError, KafkaError, OSError, TransientFailure) as exc:
            cause = f"reading the latest activation: {type(exc).__name__}: {exc}"
            await self._startup_failed(StartupError("CATALOG_KAFKA_BOOTSTRAP / CATALOG_MILVUS_URI", cause))

    async def _start_pipeline(self, model_ref: str) -> EnrichmentPipeline:
        """Models, then the gallery, within ``startup_timeout_s``; a failure stops the worker with one line.

        After start-up the same Milvus failures are an outage and are retried forever (BatchHandler).
        """
        from processors.errors import TransientFailure

        settings = (
            self.settings
            if model_ref == self.settings.model_ref
            else self.settings.model_copy(update={"model_ref": model_ref})
        )
        try:
            pipeline = await asyncio.to_thread(self.pipeline_builder, settings)
        except Exception as exc:  # a model that does not load: no retry fixes it
            cause = f"{type(exc).__name__}: {exc}"
            await self._startup_failed(StartupError("CATALOG_MODEL_REF / CATALOG_QUALITY_*", cause))
        self.health.models_loaded = True
        try:
            await within_startup(
                self.settings, "opening the Milvus gallery", pipeline.start, milvus_setting_for, (TransientFailure,)
            )
        except StartupError as exc:
            await self._startup_failed(exc)
        except Exception as exc:  # ConfigurationError and the like: a setting, not an outage
            await self._startup_failed(StartupError(milvus_setting_for(exc), f"{type(exc).__name__}: {exc}"))
        self.health.milvus_ok, self.health.milvus_error = True, None
        self._pipeline = pipeline
        return pipeline

    async def _startup_failed(self, error: StartupError) -> NoReturn:
        """Log the one clear line, ask the worker to stop, and park this agent (no restart loop)."""
        self.health.startup_error = f"{error.setting}: {error.cause}"
        error.log()
        if self.on_startup_failure is not None:
            self.on_startup_failure(error)
        await asyncio.Event().wait()  # cancelled by the worker's shutdown
        raise error  # unreachable

    async def check_milvus(self) -> None:
        """Readiness: one cheap Milvus round trip (after start-up), bounded in time."""
        pipeline = self.rollout.serving_pipeline if self.rollout is not None else self._pipeline
        if pipeline is None:
            return
        timeout = max(self.settings.health_check_interval_s, 1.0)
        try:
            await asyncio.wait_for(pipeline.run_index(pipeline.index.ping), timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            self.health.milvus_ok, self.health.milvus_error = False, f"{type(exc).__name__}: {exc}"[:300]
        else:
            self.health.milvus_ok, self.health.milvus_error = True, None

    def on_assigned(self, assigned: Any) -> None:
        self.health.assigned, self.health.partitions = True, len(assigned)
        per_topic = Counter(tp.topic for tp in assigned)
        self.metrics.assigned_partitions.clear()
        for topic, count in per_topic.items():
            self.metrics.assigned_partitions.labels(topic=topic).set(count)

    async def handler(self) -> BatchHandler:
        async with self._lock:
            if self._handler is None:
                plan = await self._plan()
                pipeline = await self._start_pipeline(plan.serve_ref)
                self.metrics.models.info(pipeline.served_models())
                handler = self._make_handler(pipeline)
                served = Served(plan.serve_ref, pipeline, CountedHandler(handler))
                rollout = RolloutController(
                    self.settings, served, handler, self._make_handler, self.owned, self.metrics
                )
                try:
                    await rollout.start(plan)  # resumes an unfinished rollout: the new model, its re-index
                except Exception as exc:
                    cause = f"resuming the rollout: {type(exc).__name__}: {exc}"
                    await self._startup_failed(StartupError("CATALOG_KAFKA_BOOTSTRAP / CATALOG_MILVUS_URI", cause))
                self.rollout, self._handler = rollout, handler
            return self._handler

    def _make_handler(self, pipeline: EnrichmentPipeline) -> BatchHandler:
        return BatchHandler(
            pipeline,
            FaustPublisher(self.topics),
            Topics(enriched=self.settings.topic_enriched, dlq=self.settings.topic_dlq),
            self.metrics,
            self._backoff(),
            HandlerLimits(
                dlq_max_copied_value=self.settings.dlq_max_copied_value_bytes, label_wait_s=self.settings.label_wait_s
            ),
            stages=pipeline.stages(),
        )

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


def _watch_health(app: faust.App, runtime: _Runtime, settings: Settings) -> None:
    """Feed /healthz and /readyz: loop ticks, the Milvus ping, and the consumer's assignment."""
    group_id = app.conf.id  # faust's consumer group (the app id, with -vN when a version is set)
    commits = GroupCommits(group_id, lambda: admin_client(settings), timeout_s=settings.health_check_interval_s)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's stubs: a coroutine receiver is valid
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        runtime.on_assigned(assigned)
        if runtime.rollout is not None:  # the re-index follows the images partitions
            await runtime.rollout.on_assigned()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust's stubs: a coroutine receiver is valid
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        runtime.health.assigned = False
        if runtime.rollout is not None:  # before they move on: no re-index commit of ours may follow the new owner's
            await runtime.rollout.on_revoked({tp.partition for tp in revoked if tp.topic == settings.topic_images})

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust's stubs: a coroutine receiver is valid
    async def _stopping(sender: Any, **kwargs: Any) -> None:
        if runtime.rollout is not None:
            await runtime.rollout.stop()
        await commits.close()

    @app.timer(1.0)
    async def loop_tick() -> None:
        runtime.health.tick()

    @app.timer(settings.health_check_interval_s)
    async def milvus_ping() -> None:
        await runtime.check_milvus()

    @app.timer(settings.health_check_interval_s)
    async def consumer_lag() -> None:
        consumer = app.consumer
        committed = await commits.read(consumer.assignment())
        if committed is None:
            return  # the broker did not answer: the last reading stands (the broker's own alerts cover it)
        try:
            # the assignment as it is now: a rebalance may have moved partitions during the read
            lags = committed_lag(consumer.assignment(), consumer.highwater, committed)
        except Exception as exc:  # noqa: BLE001 - a gauge must never take the worker down (faust crashes the app)
            log.warning("consumer_lag_failed", error=f"{type(exc).__name__}: {exc}")
            return
        gauge = runtime.metrics.consumer_lag
        gauge.clear()  # partitions that moved away drop out
        for lag in lags:
            gauge.labels(topic=lag.topic, partition=str(lag.partition)).set(lag.lag)


def create_app(
    settings: Settings,
    metrics: WorkerMetrics | None = None,
    pipeline_builder: Callable[[Settings], EnrichmentPipeline] = build_pipeline,
) -> faust.App:
    settings.worker_state_dir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(settings.app_id, **app_kwargs(settings))  # env={}: no unprefixed variable overrides these
    names = (settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels)
    configs = topic_configs(settings)
    topics = {
        n: app.topic(n, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions, config=configs)
        for n in names
    }
    runtime = _Runtime(settings, metrics or WorkerMetrics(), topics, pipeline_builder)
    runtime.owned = lambda: {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_images}
    _watch_health(app, runtime, settings)
    max_size, within = settings.batch_max_size, settings.batch_max_wait_s

    held_labels: dict[tuple[str, int, int], tuple[faust.StreamT, Any]] = {}

    @app.agent(topics[settings.topic_images], name="enrich_images")
    async def enrich_images(stream: faust.StreamT) -> None:
        """Up to ``Settings.in_flight()`` batches at once; ordering and commits as ``streams.overlap`` says."""
        handler = await runtime.handler()
        router = runtime.rollout
        assert router is not None  # handler() made it
        flow = ImageFlow(handler, settings.in_flight(), runtime.until_handled, runtime.metrics)
        try:
            async for events in stream.noack_take(max_size, within=within):  # type: ignore[attr-defined]
                raws = [_raw(e) for e in events]
                for part in await router.route(raws):  # one sub-batch per model during a rollout
                    ack = _acker(stream, [events[i] for i in part.indices])
                    await flow.submit([raws[i] for i in part.indices], ack, part.handler)
        finally:
            await flow.aclose()  # worker stop: batches in flight stay un-acked and are read again

    @app.agent(topics[settings.topic_labels], name="apply_labels")
    async def apply_labels(stream: faust.StreamT) -> None:
        handler = await runtime.handler()
        async for events in stream.noack_take(max_size, within=within):  # type: ignore[attr-defined]
            raws: list[RawEvent] = [_raw(e) for e in events]
            held = await runtime.until_handled(functools.partial(handler.handle_labels, raws))
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
