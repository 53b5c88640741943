"""Overlapped micro-batches through ordered stages: batch n enters a stage only after batch n-1 entered it.

Why serial and in order, stage by stage: the index stage of a batch must see the rows the batch
before it upserted, and the label write-then-check protocol (``processors.labels``) assumes one
image batch at a time on the index; a partition's outputs must leave in input order, and the
consumer commits an offset only once every earlier event of its partition is acknowledged.
Why overlapped: while batch n is in the models, batch n+1 can be decoded and batch n-1
searched, upserted and published, so no stage waits for the others to finish a whole batch.

A stage is one batch wide unless given a width: the models stage may hold several batches at once
(``inference_lanes``, each on a thread of its own). They still enter in order, and the serial
stage after it takes them in order again, so whichever finishes first waits for its turn there.

A batch holds a :class:`BatchTicket` and passes every stage exactly once, in the order given;
a stage it has nothing to do in is passed through (``turn`` on a later stage does it), and a
cancelled batch ``abandon``s its remaining stages so the batches behind it are not held up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from processors.requests import Enrichment, ImageRequest, Rejection

StageFn = Callable[[list[Any], dict[str, float]], Awaitable[list[Any]]]


@dataclass(frozen=True)
class BatchStage:
    """One step of a batch: its live items in, as many results out, in the same order.

    A result that is an ``Enrichment`` or a ``Rejection`` is finished and skips later stages;
    anything else goes on to the next stage. ``run`` may raise ``TransientFailure`` for the
    whole call (retry it unchanged) or any other exception (the caller isolates the culprit).
    """

    name: str
    run: StageFn
    width: int = 1  # batches in the stage at once; they enter in arrival order, may leave in any


def finished(item: object) -> bool:
    return isinstance(item, Enrichment | Rejection)


def request_of(item: Any) -> ImageRequest:
    """The request a stage's item answers (each intermediate state carries it as ``request``)."""
    return item if isinstance(item, ImageRequest) else item.request


async def advance(stage: BatchStage, items: list[Any], timings: dict[str, float]) -> list[Any]:
    """Run ``stage`` on the unfinished items; finished ones keep their slot. Errors propagate."""
    live = [i for i, item in enumerate(items) if not finished(item)]
    if not live:
        return items
    results = await stage.run([items[i] for i in live], timings)
    if len(results) != len(live):
        raise RuntimeError(f"stage {stage.name} returned {len(results)} results for {len(live)} items")
    merged = list(items)
    for i, result in zip(live, results, strict=True):
        merged[i] = result
    return merged


class StageOrder:
    """Hands out tickets in arrival order; lets them into each stage in that order, up to the stage's width at once."""

    def __init__(self, stages: Sequence[str], widths: Mapping[str, int] | None = None) -> None:
        if len(set(stages)) != len(stages) or not stages:
            raise ValueError(f"stage names must be unique and non-empty, got {list(stages)}")
        widths = dict(widths or {})
        if unknown := set(widths) - set(stages):
            raise ValueError(f"widths name stages that are not there: {sorted(unknown)}")
        if any(w < 1 for w in widths.values()):
            raise ValueError(f"stage widths must be >= 1, got {widths}")
        self.stages = tuple(stages)
        self.widths = {stage: widths.get(stage, 1) for stage in self.stages}
        self._next = dict.fromkeys(self.stages, 0)  # per stage: the ticket whose turn to enter it is
        self._inside = {stage: set[int]() for stage in self.stages}
        self._issued = 0
        self._waiting: dict[tuple[str, int], asyncio.Future[None]] = {}
        self._abandoned = {stage: set[int]() for stage in self.stages}  # passed through when their turn comes

    def ticket(self) -> BatchTicket:
        ticket = BatchTicket(self, self._issued)
        self._issued += 1
        return ticket

    async def wait_turn(self, stage: str, seq: int) -> None:
        """Return once ``seq`` is inside ``stage``: its turn came and the stage had room."""
        while not (self._next[stage] == seq and len(self._inside[stage]) < self.widths[stage]):
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[(stage, seq)] = waiter
            try:
                await waiter
            finally:
                self._waiting.pop((stage, seq), None)
        self._inside[stage].add(seq)
        self._advance(stage, seq)

    def leave(self, stage: str, seq: int) -> None:
        """Synchronous, so a cancelled batch still hands its turn on (it runs in ``finally``)."""
        if seq not in self._inside[stage]:  # a bug in a caller: fail loudly instead of letting two batches in
            inside = sorted(self._inside[stage])
            raise RuntimeError(f"ticket {seq} left {stage!r} without being in it (inside: {inside})")
        self._inside[stage].discard(seq)
        self._wake(stage)

    def give_up(self, stages: Sequence[str], seq: int) -> None:
        """``seq`` will not enter these stages: its turn passes at once, or is skipped when it comes."""
        for stage in stages:
            if self._next[stage] == seq:
                self._advance(stage, seq)
            else:
                self._abandoned[stage].add(seq)

    def _advance(self, stage: str, seq: int) -> None:
        """``seq`` entered or gave ``stage`` up: the turn goes to the next ticket not abandoned."""
        self._next[stage] = seq + 1
        while self._next[stage] in self._abandoned[stage]:
            self._abandoned[stage].discard(self._next[stage])
            self._next[stage] += 1
        self._wake(stage)

    def _wake(self, stage: str) -> None:
        """Let the ticket whose turn it is in, if it is waiting and the stage has room."""
        if len(self._inside[stage]) >= self.widths[stage]:
            return
        waiter = self._waiting.get((stage, self._next[stage]))
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class BatchTicket:
    """One batch's place in line; ``turn(stage)`` waits for it, ``close`` passes the stages left."""

    def __init__(self, order: StageOrder, seq: int) -> None:
        self._order = order
        self.seq = seq
        self._position = 0  # index of the next stage this ticket has not passed

    @asynccontextmanager
    async def turn(self, stage: str) -> AsyncIterator[None]:
        """Hold ``stage`` for this batch; stages before it that were skipped are passed through first."""
        index = self._order.stages.index(stage)
        if index < self._position:
            raise RuntimeError(f"ticket {self.seq} already passed {stage!r}")
        await self._pass_until(index)
        await self._order.wait_turn(stage, self.seq)
        try:
            yield
        finally:
            self._position = index + 1
            self._order.leave(stage, self.seq)

    async def close(self) -> None:
        """Pass every stage not passed yet, in order, waiting for each turn (a batch with nothing left to do)."""
        await self._pass_until(len(self._order.stages))

    async def _pass_until(self, index: int) -> None:
        while self._position < index:
            stage = self._order.stages[self._position]
            await self._order.wait_turn(stage, self.seq)
            self._position += 1
            self._order.leave(stage, self.seq)

    def abandon(self) -> None:
        """Give up the stages not passed yet (the batch was cancelled): the batches behind it go on.

        Its events stay un-acknowledged, so the consumer never commits past them; they are read
        again after a restart or rebalance.
        """
        rest, self._position = self._order.stages[self._position :], len(self._order.stages)
        self._order.give_up(rest, self.seq)
