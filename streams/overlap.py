"""Image batches in flight at once: the agent hands a batch over and goes on reading the next.

What overlaps and what stays serial. A batch passes intake (decode), models (embedder and
quality), index (search, Strong fetch, upsert, label check) and publish (send, wait for Kafka's
acknowledgement, then ack the events to faust). With ``in_flight`` = 3, while batch n is in the
models, batch n+1 is being decoded and batch n-1 searched, upserted and published. Batches enter
each stage in arrival order (``processors.staging.StageOrder``); the models stage holds up to
``inference_lanes`` of them at once, every other stage one, so:

- the index stage of batch n starts only after that of batch n-1 ended: a search sees the rows
  every earlier batch upserted, and the label write-then-check protocol still has one image
  batch at a time on the index (label jobs share the same single index thread);
- a batch publishes only after every earlier batch published and was acknowledged by Kafka, so
  each partition's outputs leave in input-offset order;
- a batch's events are acked to faust right after its own outputs are acknowledged, inside its
  publish turn, so acks happen in offset order as well. faust commits an offset only once every
  earlier offset of its partition is acked (``Consumer._new_offset`` stops at the first gap),
  so nothing is committed before its outputs are in Kafka, whatever is in flight.

Bounded: the agent waits for a free slot before it takes another batch, so at most ``in_flight``
batches are held (plus faust's stream buffer); when a stage stalls (a Milvus or Kafka outage is
retried in place, holding its turn), the slots fill, the agent stops reading, and the consumer
stops fetching, as before. ``in_flight`` = 1 is the strictly serial worker of before: the agent
waits for each batch to be published and acked before it reads the next.

A crash loses nothing: un-acked events of every batch in flight are read again by the next
owner of the partition (at-least-once, as before); only the duplicates may be more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from processors.staging import BatchTicket, StageOrder
from streams.metrics import WorkerMetrics
from streams.worker import Guard, RawEvent

log = structlog.get_logger("catalog.overlap")
Acks = Callable[[], Awaitable[None]]  # acks a batch's events to faust; called right after its outputs are acknowledged


class ImageHandler(Protocol):
    """What a flow runs: ``BatchHandler`` (or a rollout's wrapper of one, ``streams.rollout.serving``)."""

    stage_names: tuple[str, ...]
    stage_widths: dict[str, int]

    async def handle_images(
        self, events: Sequence[RawEvent], ticket: BatchTicket, guard: Guard, on_published: Acks
    ) -> None: ...


class ImageFlow:
    """Runs ``handler.handle_images`` for up to ``in_flight`` batches at once, stage turns in arrival order."""

    def __init__(self, handler: ImageHandler, in_flight: int, guard: Guard, metrics: WorkerMetrics) -> None:
        if in_flight < 1:
            raise ValueError("in_flight must be >= 1")
        self._handler = handler
        self._guard = guard
        self._metrics = metrics
        self._slots = asyncio.Semaphore(in_flight)
        self._order = StageOrder(handler.stage_names, handler.stage_widths)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0  # batches whose slot is taken (a finished task may still be in _tasks a moment)
        self._failed: BaseException | None = None

    @property
    def in_flight(self) -> int:
        return self._running

    async def submit(self, events: Sequence[RawEvent], on_published: Acks, handler: ImageHandler | None = None) -> None:
        """Wait for a free slot, then start the batch and return (``in_flight`` = 1: return when it is done).

        ``handler``: another model's for this batch (a rollout); its stages must be the flow's, so
        batches of both models take the same turns and each partition's outputs stay in order.
        """
        self._raise_failure()
        handler = handler or self._handler
        if tuple(handler.stage_names) != self._order.stages:
            raise ValueError(f"handler stages {handler.stage_names} differ from the flow's {self._order.stages}")
        if {**self._order.widths, **handler.stage_widths} != self._order.widths:
            raise ValueError(f"handler stage widths {handler.stage_widths} differ from the flow's {self._order.widths}")
        await self._slots.acquire()
        ticket = self._order.ticket()
        if self._running:
            self._metrics.batches_overlapped.inc()
        self._running += 1
        self._metrics.batches_in_flight.set(self._running)
        task = asyncio.create_task(
            self._run(handler, ticket, list(events), on_published), name=f"image-batch-{ticket.seq}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if self._slots.locked():  # no slot left (always the case with in_flight = 1): wait here, as before
            await self._slots.acquire()
            self._slots.release()
        self._raise_failure()

    async def _run(
        self, handler: ImageHandler, ticket: BatchTicket, events: list[RawEvent], on_published: Acks
    ) -> None:
        try:
            await handler.handle_images(events, ticket, self._guard, on_published)
        finally:
            ticket.abandon()  # no-op once every stage is passed; after a cancel, the batches behind go on
            self._running -= 1
            self._metrics.batches_in_flight.set(self._running)
            self._slots.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()  # the guard retries every step, so this is a bug: stop the agent
            log.error("image_batch_failed", error=f"{type(self._failed).__name__}: {self._failed}")

    def _raise_failure(self) -> None:
        if self._failed is not None:
            raise RuntimeError("an image batch failed outside its retry loop") from self._failed

    async def drain(self) -> None:
        """Wait for every batch in flight to be published and acked."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._raise_failure()

    async def aclose(self) -> None:
        """Cancel the batches in flight: their events stay un-acked and are read again (worker stop)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
