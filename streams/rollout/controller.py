"""The worker's side of a model rollout (docs/rollout.md): follow activations, re-index while serving, switch.

One controller per worker process, on the worker's event loop:

- ``start(plan)``: serve what start-up read from the log; resume an unfinished rollout; then
  follow the models topic in the background.
- An activation of another model is validated (registry ref, pinned checksum, the served
  embedding dimension, no rollout already running). A refusal is one ``activation_refused`` log
  line and ``catalog_activation_refused_total{reason}``; the worker keeps serving its model. An
  activation refused only because a rollout runs is followed when that rollout is done, if it is
  still the latest: a worker that starts then would follow it too, so workers never diverge.
  Otherwise the new model's pipeline is built beside the served one and a ``PartitionReindexer``
  re-embeds the owned partitions in the background, while enrichment goes on with the old model.
- ``route(events)``: the image agent asks, batch by batch, which model each event goes to. Once
  the re-index group lags by at most ``CATALOG_ROLLOUT_SWITCH_LAG``, a partition switches when a
  batch carries it (``catch_up_partition(p, w_p)``, ``w_p`` its first offset in the batch); a
  partition that gets no batch switches at its end offset once nothing below it can still come.
- When every partition is switched (the group's commit metadata) and nothing lags: the alias
  moves to the new collection, ``catalog_models_info`` names the new model, the old pipeline is
  closed once its last batch is done. The old collection is kept (retention setting aside).

Labels confirmed during a rollout go to both collections (``BatchHandler.label_mirrors``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from model_store.activation_log import read_activations
from processors.embedding import TorchEmbedder
from processors.errors import TransientFailure
from processors.pipeline import EnrichmentPipeline
from streams.activation import ActivationRecord, activation_log_path
from streams.events import ModelActivated
from streams.metrics import WorkerMetrics
from streams.retry import Backoff
from streams.rollout.alias import point_alias
from streams.rollout.collections import apply_retention
from streams.rollout.control_metrics import RolloutMetrics
from streams.rollout.factory import build_reindexer
from streams.rollout.follow import InvalidActivation, follow_activations
from streams.rollout.metrics import ReindexMetrics
from streams.rollout.offsets import read_group_offsets
from streams.rollout.reindexer import PartitionReindexer
from streams.rollout.routing import first_offsets, idle_switch_offset, next_offsets, split_by_model
from streams.rollout.serving import CountedHandler, Served, sibling_pipeline
from streams.rollout.start_plan import StartPlan
from streams.rollout.status import RolloutStatus
from streams.rollout.validation import Refusal, check_activation, check_dimension
from streams.settings import Settings
from streams.worker import BatchHandler, RawEvent

log = structlog.get_logger("catalog.rollout")


@dataclass(frozen=True)
class SubBatch:
    """Events of one batch (their indices) that one model enriches."""

    indices: list[int]
    handler: CountedHandler


@dataclass
class Rollout:
    """One activation being rolled out by this worker."""

    activation: ModelActivated
    old: Served
    new: Served
    reindexer: PartitionReindexer
    switched: set[int] = field(default_factory=set)  # owned images partitions served by ``new``
    switching: bool = False  # the group caught up: partitions may switch
    started: float = field(default_factory=time.monotonic)
    last_batch: dict[int, float] = field(default_factory=dict)  # partition -> when a batch last carried it
    driver: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class ControllerTiming:
    check_interval_s: float = 1.0  # how often the group's lag is read while re-indexing
    idle_after_s: float = 2.0  # a partition without a batch this long may switch at its end offset
    old_drain_timeout_s: float = 120.0  # longest wait for the old model's last batch before closing it


class RolloutController:
    """Decides which model enriches each event, and drives the re-index of an activation."""

    def __init__(
        self,
        settings: Settings,
        serving: Served,
        labels: BatchHandler,
        make_handler: Callable[[EnrichmentPipeline], BatchHandler],
        owned: Callable[[], set[int]],
        worker_metrics: WorkerMetrics,
        timing: ControllerTiming | None = None,
    ) -> None:
        """``labels``: the handler the label agent uses (its pipeline and mirrors follow the rollout);
        ``owned``: the images partitions the worker's consumer is assigned now."""
        self.settings = settings
        self._serving = serving
        self._labels = labels
        self._make_handler = make_handler
        self._owned = owned
        self._worker_metrics = worker_metrics
        registry: CollectorRegistry = worker_metrics.registry
        self.metrics = RolloutMetrics(registry)
        self.reindex_metrics = ReindexMetrics(registry)
        self.timing = timing or ControllerTiming()
        self._backoff = Backoff(settings.retry_backoff_initial_s, settings.retry_backoff_max_s)
        self._lock = asyncio.Lock()  # route, rebalance, switches and the end of a rollout: one at a time
        self._rollout: Rollout | None = None
        self._seen_next: dict[int, int] = {}  # partition -> one past the highest offset routed
        self._deferred: ActivationRecord | None = None  # the latest activation refused while a rollout ran
        self._tasks: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- state

    @property
    def serving_ref(self) -> str:
        return self._serving.ref

    @property
    def serving_pipeline(self) -> EnrichmentPipeline:
        """The model every unswitched partition is served with (readiness pings its Milvus connection)."""
        return self._serving.pipeline

    @property
    def rollout(self) -> Rollout | None:
        return self._rollout

    # ----------------------------------------------------------------- lifecycle

    async def start(self, plan: StartPlan) -> None:
        """Serve the plan's model; resume its unfinished rollout; follow the models topic from then on."""
        for refusal in plan.refusals:
            self._refuse(refusal, None, at_start=True)
        log.info("serving_model", model_ref=self._serving.ref, source=plan.source)
        if plan.resume is not None:
            try:
                await self._begin(plan.resume, resumed=True)
            except Refusal as refusal:
                self._refuse(refusal, plan.resume, at_start=True)
        self._spawn(follow_activations(self.settings, plan.follow_from, self._on_record), "follow-activations")

    async def stop(self) -> None:
        """Worker shutdown: stop the background tasks and the re-index (its last commit stands)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ro, self._rollout = self._rollout, None
        if ro is not None:
            await ro.reindexer.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("rollout_task_failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}")

    # ----------------------------------------------------------------- activations

    async def _on_record(self, item: ActivationRecord | InvalidActivation) -> None:
        if isinstance(item, InvalidActivation):
            self._refuse(Refusal("invalid_activation", f"offset {item.offset}: {item.message}"), None)
            return
        a = item.event
        ro = self._rollout
        if ro is not None:
            if a.model_ref == ro.activation.model_ref:  # read again, or published again: the same rollout goes on
                self._deferred = None
                log.info("activation_already_rolling_out", model_ref=a.model_ref, offset=item.offset)
            else:
                self._deferred = item  # the latest record wins: a restarting worker would follow it too
                running = ro.activation.model_ref
                message = f"the rollout to {running} is running; followed once it is done, unless replaced"
                self._refuse(Refusal("reindex_running", message), a)
            return
        if a.model_ref == self._serving.ref:
            log.info("activation_already_served", model_ref=a.model_ref, offset=item.offset)
            return
        log.info("activation_received", model_ref=a.model_ref, previous_ref=a.previous_ref, offset=item.offset)
        try:
            await self._begin(a, resumed=False)
        except Refusal as refusal:
            self._refuse(refusal, a)
        except Exception as exc:  # Kafka refusing the re-index consumer, say: refused, the worker goes on serving
            self._refuse(Refusal("rollout_start_failed", f"{type(exc).__name__}: {exc}"), a)

    def _refuse(self, refusal: Refusal, a: ModelActivated | None, at_start: bool = False) -> None:
        self.metrics.refused.labels(reason=refusal.reason).inc()
        log.error("activation_refused", reason=refusal.reason, message=refusal.message[:500],
                  model_ref=a.model_ref if a else None, serving=self._serving.ref, at_start=at_start)  # fmt: skip

    async def _begin(self, a: ModelActivated, resumed: bool) -> None:
        """Validate, load the new model beside the served one, start its re-index on the owned partitions."""
        old = self._serving
        await asyncio.to_thread(check_activation, self.settings, a)
        config = dataclasses.replace(self.settings.embedder_config(), model_ref=a.model_ref)
        try:
            embedder = await asyncio.to_thread(TorchEmbedder.from_config, config)
        except Exception as exc:  # a model that does not load: no retry fixes it
            raise Refusal("model_load_failed", f"{a.model_ref}: {type(exc).__name__}: {exc}") from exc
        check_dimension(old.ref, old.pipeline.embedder.dim, a.model_ref, embedder.dim)
        pipeline = sibling_pipeline(self.settings, old.pipeline, embedder, a.collection)
        reindexer = build_reindexer(self.settings, a, old.pipeline.index.collection, self.reindex_metrics, embedder)
        new = Served(a.model_ref, pipeline, CountedHandler(self._make_handler(pipeline)))
        try:
            await self._until_up(pipeline.start, "new model's collection")
            await self._until_up(reindexer.start, "re-index")
            async with self._lock:
                owned = self._owned()
                await reindexer.assign(owned)
                switched = set(await reindexer.switched_partitions()) & owned
                ro = Rollout(a, old, new, reindexer, switched)
                self._rollout = ro
                self._labels.label_mirrors = [pipeline]
        except BaseException:
            await reindexer.stop()
            await pipeline.aclose()
            raise
        self.metrics.in_progress.set(1)
        log.info("rollout_resumed" if resumed else "rollout_started", model_ref=a.model_ref, previous=old.ref,
                 collection=a.collection, group=reindexer.group_id, owned=sorted(owned),
                 switched=sorted(switched))  # fmt: skip
        ro.driver = self._spawn(self._drive(ro), f"rollout-{a.model_ref}")

    async def _until_up(self, action: Callable[[], Coroutine[Any, Any, None]], what: str) -> None:
        """Milvus or Kafka away while a rollout starts: wait it out, the worker keeps serving meanwhile."""
        await self._with_backoff(action, "rollout_start_retry", what=what)

    # ----------------------------------------------------------------- the image agent's side

    async def route(self, events: Sequence[RawEvent]) -> list[SubBatch]:
        """One sub-batch per model, each partition wholly in one; a partition due to switch switches here."""
        async with self._lock:
            for p, n in next_offsets(events).items():
                self._seen_next[p] = max(self._seen_next.get(p, 0), n)
            ro = self._rollout
            if ro is None:
                return [SubBatch(list(range(len(events))), self._serving.images.lease())] if events else []
            firsts = first_offsets(events)
            now = time.monotonic()
            for p in firsts:
                ro.last_batch[p] = now
            await self._adopt(ro, set(firsts))
            if ro.switching:
                for p, w in sorted(firsts.items()):
                    if p not in ro.switched and p in ro.reindexer.owned:
                        await self._switch(ro, p, w)
            old, new = split_by_model(events, ro.switched)
            return [SubBatch(ix, served.images.lease()) for ix, served in ((old, ro.old), (new, ro.new)) if ix]

    async def _adopt(self, ro: Rollout, partitions: set[int]) -> None:
        """Partitions the consumer holds but the re-index was not told about yet (a rebalance signal not seen)."""
        missing = (partitions & self._owned()) - ro.reindexer.owned
        if missing:
            await ro.reindexer.assign(missing)
            ro.switched |= set(await ro.reindexer.switched_partitions()) & missing

    async def _switch(self, ro: Rollout, partition: int, offset: int) -> None:
        """Hand ``partition`` over at ``offset``; on failure it stays with the old model and switches later."""
        t0 = time.perf_counter()
        try:
            result = await ro.reindexer.catch_up_partition(partition, offset)
        except (TransientFailure, TimeoutError, ValueError) as exc:
            log.warning("rollout_switch_deferred", partition=partition, offset=offset,
                        error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
            return
        pause = time.perf_counter() - t0
        ro.switched.add(partition)
        self.metrics.partitions_switched.inc()
        self.metrics.switch_pause.set(pause)
        log.info("rollout_partition_switched", partition=partition, offset=offset, model_ref=ro.new.ref,
                 caught_up_records=result.records, pause_ms=round(pause * 1000, 1))  # fmt: skip

    # ----------------------------------------------------------------- rebalance

    async def on_assigned(self) -> None:
        """After a rebalance: the re-index follows the consumer's images partitions."""
        async with self._lock:
            if self._rollout is not None:
                await self._sync_owned(self._rollout)

    async def _sync_owned(self, ro: Rollout) -> None:
        owned = self._owned()
        lost, gained = ro.reindexer.owned - owned, owned - ro.reindexer.owned
        if lost:
            await ro.reindexer.revoke(lost)
        if gained:
            await ro.reindexer.assign(gained)
            ro.switched |= set(await ro.reindexer.switched_partitions()) & gained
        ro.switched &= owned

    async def on_revoked(self, partitions: set[int]) -> None:
        """Before the partitions move on: the re-index gives them up (no commit of ours can follow theirs)."""
        for p in partitions:
            self._seen_next.pop(p, None)
        async with self._lock:
            ro = self._rollout
            if ro is not None and partitions & ro.reindexer.owned:
                await ro.reindexer.revoke(partitions & ro.reindexer.owned)
                ro.switched -= partitions

    # ----------------------------------------------------------------- the background re-index

    async def _drive(self, ro: Rollout) -> None:
        """Re-index step by step; switch idle partitions once caught up; finish when every partition switched."""
        delays = self._backoff.delays()
        next_check = 0.0
        while True:
            try:
                result = await ro.reindexer.step()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.timing.check_interval_s
                    if await self._check(ro):
                        return
                if result.records == 0:
                    await asyncio.sleep(0.1)
                delays = self._backoff.delays()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Milvus or Kafka away (or a bug): retried, enrichment goes on meanwhile
                delay = next(delays)
                log.warning("rollout_retry", error=f"{type(exc).__name__}: {exc}"[:300], retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _check(self, ro: Rollout) -> bool:
        """Read the group's progress; True once the rollout is finished here."""
        async with self._lock:  # a rebalance signal that came before this controller existed is caught up here
            await self._sync_owned(ro)
        offsets = await ro.reindexer.offsets()
        if not ro.switching and offsets.lag <= self.settings.rollout_switch_lag:
            ro.switching = True
            log.info("rollout_switching", model_ref=ro.new.ref, lag=offsets.lag,
                     switch_lag=self.settings.rollout_switch_lag)  # fmt: skip
        if not ro.switching:
            return False
        await self._switch_idle(ro)
        status = RolloutStatus(ro.activation, offsets, self.settings.topic_images, self.settings.topic_gallery)
        if status.complete:
            await self._finish(ro)
            return True
        return False

    async def _switch_idle(self, ro: Rollout) -> None:
        """Owned partitions without a batch for a while switch at their end offset, if nothing below it can come."""
        now = time.monotonic()
        idle = {p for p in ro.reindexer.owned - ro.switched
                if now - ro.last_batch.get(p, float("-inf")) >= self.timing.idle_after_s}  # fmt: skip
        if not idle:
            return
        async with self._lock:  # no batch is routed meanwhile: the offsets read here stay true
            main = await read_group_offsets(self.settings, self.settings.app_id, [self.settings.topic_images])
            for po in main.partitions:
                p = po.partition
                if p not in idle or p in ro.switched or p not in ro.reindexer.owned:
                    continue
                at = idle_switch_offset(po.start, po.end, po.committed, self._seen_next.get(p))
                if at is not None:
                    await self._switch(ro, p, at)

    async def _finish(self, ro: Rollout) -> None:
        """Every partition switched: serve the new model alone, move the alias, close the old model."""
        async with self._lock:
            if self._rollout is not ro:
                return
            self._rollout = None
            self._serving = ro.new
            self._labels.pipeline = ro.new.pipeline
            self._labels.label_mirrors = []
        try:  # its batches write through the alias: they must be done before the alias moves
            await asyncio.wait_for(ro.old.images.idle(), self.timing.old_drain_timeout_s)
        except TimeoutError:
            log.warning("rollout_old_batches_pending", model_ref=ro.old.ref)
        prefix = self.settings.milvus_collection_prefix
        index = ro.new.pipeline.index
        previous = await self._retry(lambda: ro.new.pipeline.run_index(
            index.call, "move alias", lambda: point_alias(index.client, prefix, ro.activation.collection)))  # fmt: skip
        self._worker_metrics.models.info(ro.new.pipeline.served_models())
        entries = read_activations(activation_log_path(self.settings))
        keep = self.settings.rollout_keep_collections

        def retention() -> list[str]:
            return apply_retention(index.client, prefix, keep, ro.activation, entries)

        await self._retry(lambda: ro.new.pipeline.run_index(index.call, "retention", retention))
        await ro.reindexer.stop()
        await ro.old.pipeline.aclose()
        self.metrics.in_progress.set(0)
        self.metrics.completed.inc()
        log.info("rollout_done", model_ref=ro.new.ref, previous=ro.old.ref, collection=ro.activation.collection,
                 alias_was=previous, seconds=round(time.monotonic() - ro.started, 1))  # fmt: skip
        deferred, self._deferred = self._deferred, None
        if deferred is not None:  # the log moved on during the rollout: serve what it says now, as a restart would
            log.info("activation_deferred_followed", model_ref=deferred.event.model_ref, offset=deferred.offset)
            await self._on_record(deferred)

    async def _retry(self, action: Callable[[], Any]) -> Any:
        return await self._with_backoff(action, "rollout_retry")

    async def _with_backoff(self, action: Callable[[], Any], event: str, **fields: Any) -> Any:
        """``action()`` until it raises no ``TransientFailure``: one ``event`` warning per failure, then backoff."""
        delays = self._backoff.delays()
        while True:
            try:
                return await action()
            except TransientFailure as exc:
                delay = next(delays)
                log.warning(event, **fields, error=exc.message[:300], retry_in_s=delay)
                await asyncio.sleep(delay)
