"""What the agents do with one micro-batch of Kafka events: parse, enrich, publish, then ack.

The faust wiring lives in ``streams.app``; this module only needs an object with
``send(topic, key, value)`` so the logic stays readable.

An image batch passes the pipeline's stages and then ``publish``, each under its ticket's turn
(``processors.staging``): with several batches in flight (``streams.overlap``) the stages of
consecutive batches overlap, while each stage sees one batch at a time, in arrival order. Every
step retries in place, holding its turn, so a failure never lets a later batch overtake.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import structlog

from processors.errors import InputRejected, ProcessingError, TransientFailure
from processors.labels import LabelUpdate, apply_labels, embedded_products
from processors.pipeline import EnrichmentPipeline
from processors.requests import Enrichment, ImageRequest, Outcome, Rejection
from processors.staging import BatchStage, BatchTicket, StageOrder, advance, finished, request_of
from streams.decoding import parse_event, peek_ids
from streams.events import ImageSubmitted, LabelConfirmed, SourceRef
from streams.metrics import WorkerMetrics
from streams.output import DEFAULT_MAX_COPIED_VALUE, dead_letter_event, dead_letter_key, enriched_event
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
    origin: RawEvent | None = None  # the consumed event it answers, for a fallback letter
    fallback: bool = False  # already the smallest letter we can make: never replaced again


class Publisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing]) -> list[ProcessingError | None]:
        """Send all and wait for the broker; per message None (acknowledged) or why it was not.

        ``TransientFailure``: worth sending again; ``InputRejected``: the broker will never take it.
        """
        ...


@dataclass(frozen=True)
class Topics:
    enriched: str
    dlq: str


@dataclass(frozen=True)
class HandlerLimits:
    dlq_max_copied_value: int = DEFAULT_MAX_COPIED_VALUE
    label_wait_s: float = 60.0


@dataclass
class _PendingLabel:
    event: RawEvent
    product_id: str
    deadline: float


PUBLISH = "publish"
Guard = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def _once(action: Callable[[], Awaitable[Any]]) -> Any:
    return await action()


def internal_error(stage: str, exc: BaseException) -> InputRejected:
    """A bug met while handling one event: dead-lettered with a code, never acknowledged as enriched."""
    return InputRejected("internal_error", f"{type(exc).__name__}: {str(exc)[:500]}", stage=stage)


class BatchHandler:
    """Turns one batch of raw events into acknowledged output.

    Only cancellation escapes: an input problem, or any exception met while handling one
    event, becomes that event's dead letter, so no batch is ever ended or skipped by it.
    """

    def __init__(
        self,
        pipeline: EnrichmentPipeline,
        publisher: Publisher,
        topics: Topics,
        metrics: WorkerMetrics,
        backoff: Backoff,
        limits: HandlerLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        stages: Sequence[BatchStage] | None = None,
    ) -> None:
        """``stages``: the pipeline's (``pipeline.stages()``); by default one stage, ``process_batch``."""
        self.pipeline = pipeline
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.backoff = backoff
        self.limits = limits or HandlerLimits()
        self.clock = clock
        self.pending_labels: dict[tuple[str, int, int], _PendingLabel] = {}
        self.stages = tuple(stages or (BatchStage("process", self._whole_batch),))
        self.stage_names = (*(s.name for s in self.stages), PUBLISH)
        self.stage_widths = {s.name: s.width for s in self.stages}
        self.label_mirrors: list[EnrichmentPipeline] = []  # a rollout's new model: labels go to both collections

    async def _whole_batch(self, requests: list[ImageRequest], timings: dict[str, float]) -> list[Outcome]:
        return await self.pipeline.process_batch(requests)

    def _dead_letter(self, event: RawEvent, error: InputRejected, fallback: bool = False) -> Outgoing:
        event_id, product_id = peek_ids(event.value)
        cap = 0 if fallback else self.limits.dlq_max_copied_value
        letter = dead_letter_event(error, event.source, event.key, event.value, event_id, product_id, cap)
        self.metrics.dead_lettered.labels(error_code=error.error_code).inc()
        if error.error_code == "internal_error":
            self.metrics.internal_errors.labels(stage=error.stage).inc()
        log_at = log.error if error.error_code == "internal_error" else log.info
        log_at(
            "dead_lettered",
            error_code=error.error_code,
            stage=error.stage,
            reason=error.message[:300],
            event_id=event_id,
            product_id=product_id,
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
        )
        value = letter.model_dump_json().encode()
        return Outgoing(self.topics.dlq, dead_letter_key(event.key), value, event, fallback)

    async def _retrying(self, action: Callable[[], Awaitable[Any]]) -> Any:
        def count(exc: TransientFailure) -> None:
            self.metrics.transient_retries.labels(error_code=exc.error_code).inc()

        return await retry_transient(action, self.backoff, on_retry=count)

    def _request(self, event: RawEvent) -> ImageRequest:
        submitted = parse_event(ImageSubmitted, event.value)
        return ImageRequest(
            event_id=submitted.event_id,
            product_id=submitted.product_id,
            seller_id=submitted.seller_id,
            image_url=submitted.image_url,
            image_b64=submitted.image_b64,
            scene=submitted.scene,
            category_hint=submitted.category_hint,
        )

    async def handle_images(
        self,
        events: Sequence[RawEvent],
        ticket: BatchTicket | None = None,
        guard: Guard = _once,
        on_published: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Parse, run every stage, publish, then ``on_published`` (the acks), each stage at its turn.

        ``ticket``: this batch's place among the batches in flight (alone when None). ``guard``
        runs each step until it does not raise (the worker's: log, count, back off, again), in
        place, so the turn is kept meanwhile; the handler itself turns every input problem into
        a dead letter, so only our bugs reach it.
        """
        ticket = ticket or StageOrder(self.stage_names, self.stage_widths).ticket()
        self.metrics.batch_size.observe(len(events))
        outgoing: list[Outgoing | None] = [None] * len(events)
        slots: list[int] = []
        items: list[Any] = []
        for i, event in enumerate(events):
            self.metrics.events_in.labels(topic=event.topic).inc()
            try:
                items.append(self._request(event))
                slots.append(i)
            except InputRejected as exc:
                outgoing[i] = self._dead_letter(event, exc)
            except Exception as exc:  # a parser bug must cost one event, never the batch
                outgoing[i] = self._dead_letter(event, internal_error("validate", exc))
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        for stage in self.stages:
            async with ticket.turn(stage.name):
                items = await guard(partial(self._advance_isolating, stage, items, timings))
        if items:
            timings.setdefault("batch", round((time.perf_counter() - t0) * 1000.0, 3))
        async with ticket.turn(PUBLISH):
            await guard(lambda: self._answer_and_publish(events, outgoing, slots, items))
            if on_published is not None:
                await on_published()

    async def _answer_and_publish(
        self, events: Sequence[RawEvent], outgoing: list[Outgoing | None], slots: list[int], outcomes: list[Outcome]
    ) -> None:
        answered = list(outgoing)
        for slot, outcome in zip(slots, outcomes, strict=True):
            answered[slot] = self._answer(events[slot], outcome)
        enriched = next((o for o in outcomes if isinstance(o, Enrichment)), None)
        if enriched is not None:
            self.metrics.observe_timings(enriched.timings_ms)
        await self._publish([m for m in answered if m is not None])

    def _answer(self, event: RawEvent, outcome: Outcome) -> Outgoing:
        if isinstance(outcome, Rejection):
            return self._dead_letter(event, outcome.error)
        try:
            value = enriched_event(outcome, event.source).model_dump_json().encode()
        except Exception as exc:  # an enrichment the contract refuses is our bug, not a success
            return self._dead_letter(event, internal_error("publish", exc))
        log.debug(
            "enriched",
            event_id=outcome.request.event_id,
            product_id=outcome.request.product_id,
            category=outcome.vote.label,
        )
        return Outgoing(self.topics.enriched, event.key, value, event)

    async def _advance_isolating(self, stage: BatchStage, items: list[Any], timings: dict[str, float]) -> list[Any]:
        """The batch as one unit; if the stage raises something unexpected, each item alone to find the culprit.

        A transient failure retries the stage unchanged; the culprit becomes a ``Rejection``
        (``internal_error``, stage ``process``), its batch mates go on.
        """
        live = [item for item in items if not finished(item)]
        try:
            return await self._retrying(lambda: advance(stage, items, timings))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len(live) == 1:
                error = internal_error("process", exc)
                return [Rejection(request_of(item), error) if not finished(item) else item for item in items]
            log.error("batch_failed_isolating", error=f"{type(exc).__name__}: {exc}", events=len(live), step=stage.name)
            out: list[Any] = []
            for item in items:
                out.extend(await self._advance_isolating(stage, [item], timings) if not finished(item) else [item])
            return out

    async def _publish(self, messages: list[Outgoing]) -> None:
        """Deliver every message once: acknowledged ones are never re-sent, refused ones become small letters."""
        pending = list(messages)
        delays = self.backoff.delays()
        while pending:
            results = await self.publisher.publish(pending)
            again: list[Outgoing] = []
            transient: ProcessingError | None = None
            for message, error in zip(pending, results, strict=True):
                if error is None:
                    self.metrics.events_out.labels(topic=message.topic).inc()
                elif isinstance(error, TransientFailure):
                    again.append(message)
                    transient = error
                else:
                    replacement = self._undeliverable(message, error)
                    if replacement is not None:
                        again.append(replacement)
            pending = again
            if transient is not None:
                self.metrics.transient_retries.labels(error_code=transient.error_code).inc()
                delay = next(delays)
                log.warning("publish_retry", error=transient.message[:300], messages=len(pending), retry_in_s=delay)
                await asyncio.sleep(delay)

    def _undeliverable(self, message: Outgoing, error: ProcessingError) -> Outgoing | None:
        """A message the broker refuses for good: answer its event with the smallest dead letter instead."""
        if message.fallback or message.origin is None:
            self.metrics.output_dropped.labels(error_code=error.error_code).inc()
            log.error("output_dropped", topic=message.topic, error_code=error.error_code, error=error.message[:300])
            return None
        refusal = InputRejected(error.error_code, f"output refused by Kafka: {error.message}", stage="publish")
        return self._dead_letter(message.origin, refusal, fallback=True)

    async def handle_labels(self, events: Sequence[RawEvent]) -> set[tuple[str, int, int]]:
        """Apply labels; returns the events held back because their image has not arrived yet.

        A held label is already in the label store (it applies whenever its image comes); it is
        held un-acked for ``label_wait_s`` and then dead-lettered as ``label_unknown_product``.
        """
        self.metrics.batch_size.observe(len(events))
        outgoing: list[Outgoing] = []
        parsed: list[tuple[RawEvent, LabelConfirmed]] = []
        for event in events:
            self.metrics.events_in.labels(topic=event.topic).inc()
            try:
                parsed.append((event, parse_event(LabelConfirmed, event.value, stage="labels")))
            except InputRejected as exc:
                outgoing.append(self._dead_letter(event, exc))
            except Exception as exc:
                outgoing.append(self._dead_letter(event, internal_error("labels", exc)))
        held: set[tuple[str, int, int]] = set()
        if parsed:
            updates = [LabelUpdate(p.product_id, p.category) for _, p in parsed]
            pipeline = self.pipeline
            result = await self._retrying(
                lambda: pipeline.run_index(apply_labels, pipeline.index, pipeline.labels, updates)
            )
            self.metrics.labels_applied.inc(len(result.applied))
            unknown = set(result.unknown)
            for m in list(self.label_mirrors):  # held only while its image is in none of the collections
                mirrored = await self._retrying(partial(m.run_index, apply_labels, m.index, m.labels, updates))
                unknown &= set(mirrored.unknown)
            deadline = self.clock() + self.limits.label_wait_s
            for event, label in parsed:
                if label.product_id in unknown:
                    ref = _ref(event)
                    self.pending_labels[ref] = _PendingLabel(event, label.product_id, deadline)
                    held.add(ref)
                    log.info("label_pending", product_id=label.product_id, wait_s=self.limits.label_wait_s)
                else:
                    log.info("label_applied", product_id=label.product_id, category=label.category)
        self.metrics.labels_pending.set(len(self.pending_labels))
        await self._publish(outgoing)
        return held

    async def recheck_labels(self, owned: Callable[[RawEvent], bool] = lambda _: True) -> set[tuple[str, int, int]]:
        """Release held labels whose image arrived; dead-letter those past their wait. Returns released refs."""
        for ref, item in list(self.pending_labels.items()):
            if not owned(item.event):  # the partition moved to another worker: it re-reads the label
                del self.pending_labels[ref]
        if not self.pending_labels:
            self.metrics.labels_pending.set(0)
            return set()
        ids = sorted({p.product_id for p in self.pending_labels.values()})
        pipeline = self.pipeline
        arrived = await self._retrying(lambda: pipeline.run_index(embedded_products, pipeline.index, ids))
        for m in list(self.label_mirrors):
            arrived |= await self._retrying(partial(m.run_index, embedded_products, m.index, ids))
        now = self.clock()
        released: set[tuple[str, int, int]] = set()
        letters: list[Outgoing] = []
        for ref, item in list(self.pending_labels.items()):
            if item.product_id in arrived:
                released.add(ref)
            elif now >= item.deadline:
                error = InputRejected(
                    "label_unknown_product",
                    f"no image embedded for {item.product_id!r} within {self.limits.label_wait_s:g}s; the label is "
                    "kept in the label store and applies when the image arrives",
                    stage="labels",
                )
                letters.append(self._dead_letter(item.event, error))
                released.add(ref)
        await self._publish(letters)
        for ref in released:
            del self.pending_labels[ref]
        self.metrics.labels_pending.set(len(self.pending_labels))
        return released


def _ref(event: RawEvent) -> tuple[str, int, int]:
    return (event.topic, event.partition, event.offset)
