"""StageOrder: stages overlap across batches, each stage admits batches in arrival order, one at a time unless wider."""

from __future__ import annotations

import asyncio
import random

import pytest

from processors.staging import BatchTicket, StageOrder

STAGES = ("intake", "models", "index", "publish")


class Recorder:
    """Logs (stage, seq, enter/exit) in the order they happen; checks exclusivity as it goes."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, str]] = []
        self.inside: dict[str, int | None] = dict.fromkeys(STAGES)
        self.max_busy_stages = 0

    async def work(self, ticket: BatchTicket, stage: str, seconds: float) -> None:
        async with ticket.turn(stage):
            assert self.inside[stage] is None, f"{stage}: {ticket.seq} entered while {self.inside[stage]} was in"
            self.inside[stage] = ticket.seq
            self.log.append((stage, ticket.seq, "enter"))
            self.max_busy_stages = max(self.max_busy_stages, sum(v is not None for v in self.inside.values()))
            await asyncio.sleep(seconds)
            self.log.append((stage, ticket.seq, "exit"))
            self.inside[stage] = None

    def order(self, stage: str) -> list[int]:
        return [seq for s, seq, what in self.log if s == stage and what == "enter"]


async def _run_batches(durations: list[dict[str, float]], skip: set[tuple[int, str]] = frozenset()) -> Recorder:
    order, rec = StageOrder(STAGES), Recorder()

    async def batch(ticket: BatchTicket, times: dict[str, float]) -> None:
        for stage in STAGES:
            if (ticket.seq, stage) not in skip:
                await rec.work(ticket, stage, times[stage])
        await ticket.close()

    await asyncio.gather(*(batch(order.ticket(), d) for d in durations))
    return rec


def test_each_stage_takes_batches_one_at_a_time_in_arrival_order_while_stages_overlap() -> None:
    rng = random.Random(3)
    durations = [{s: rng.uniform(0.0, 0.01) for s in STAGES} for _ in range(12)]
    durations[0]["intake"] = 0.05  # the first batch is slow to decode: the others must not overtake it later on
    rec = asyncio.run(_run_batches(durations))
    for stage in STAGES:
        assert rec.order(stage) == list(range(12)), stage
    assert rec.max_busy_stages >= 2, "no two stages ever ran at the same time: nothing overlapped"


def test_a_batch_with_nothing_to_do_in_a_stage_still_keeps_its_place() -> None:
    durations = [{s: 0.002 for s in STAGES} for _ in range(4)]
    durations[0]["index"] = 0.05
    rec = asyncio.run(_run_batches(durations, skip={(1, "models"), (1, "index"), (2, "intake")}))
    assert rec.order("publish") == [0, 1, 2, 3]
    assert rec.order("index") == [0, 2, 3]
    publish_1 = rec.log.index(("publish", 1, "enter"))
    assert rec.log.index(("index", 0, "exit")) < publish_1, "batch 1 skipped index but overtook batch 0 there"


def test_a_cancelled_batch_does_not_hold_up_the_batches_behind_it() -> None:
    async def scenario() -> list[int]:
        order, rec = StageOrder(STAGES), Recorder()
        tickets = [order.ticket() for _ in range(3)]
        published: list[int] = []

        async def batch(ticket: BatchTicket, stall: bool) -> None:
            try:
                await rec.work(ticket, "intake", 0.001)
                if stall:
                    await asyncio.sleep(3600)
                async with ticket.turn("publish"):
                    published.append(ticket.seq)
            finally:
                ticket.abandon()

        tasks = [asyncio.create_task(batch(t, stall=t.seq == 0)) for t in tickets]
        await asyncio.sleep(0.05)
        assert published == []  # batches 1 and 2 wait for batch 0's turn
        tasks[0].cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        return published

    assert asyncio.run(scenario()) == [1, 2]


def test_a_stage_cannot_be_entered_twice_by_one_batch() -> None:
    async def scenario() -> None:
        ticket = StageOrder(STAGES).ticket()
        async with ticket.turn("models"):
            pass
        with pytest.raises(RuntimeError, match="already passed"):
            async with ticket.turn("intake"):
                pass

    asyncio.run(scenario())


def test_stage_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        StageOrder(("a", "b", "a"))


class WideRecorder:
    """Per stage: the batches inside at once (at most its width), and the order they entered and left in."""

    def __init__(self, widths: dict[str, int]) -> None:
        self.widths = widths
        self.inside: dict[str, set[int]] = {s: set() for s in STAGES}
        self.most_inside: dict[str, int] = dict.fromkeys(STAGES, 0)
        self.entered: dict[str, list[int]] = {s: [] for s in STAGES}
        self.left: dict[str, list[int]] = {s: [] for s in STAGES}

    async def work(self, ticket: BatchTicket, stage: str, seconds: float) -> None:
        async with ticket.turn(stage):
            self.inside[stage].add(ticket.seq)
            assert len(self.inside[stage]) <= self.widths.get(stage, 1), f"{stage}: {sorted(self.inside[stage])}"
            self.most_inside[stage] = max(self.most_inside[stage], len(self.inside[stage]))
            self.entered[stage].append(ticket.seq)
            await asyncio.sleep(seconds)
            self.inside[stage].discard(ticket.seq)
            self.left[stage].append(ticket.seq)


def test_a_wide_stage_holds_batches_side_by_side_and_the_next_stage_takes_them_back_in_order() -> None:
    widths = {"models": 2}

    async def scenario() -> WideRecorder:
        order, rec = StageOrder(STAGES, widths), WideRecorder(widths)
        rng = random.Random(5)

        async def batch(ticket: BatchTicket) -> None:
            for stage in STAGES:
                slow_models = stage == "models" and ticket.seq % 3 == 0  # later batches finish their models first
                await rec.work(ticket, stage, 0.03 if slow_models else rng.uniform(0.0, 0.004))

        await asyncio.gather(*(batch(order.ticket()) for _ in range(12)))
        return rec

    rec = asyncio.run(scenario())
    assert rec.most_inside["models"] == 2, "the models stage never held two batches: no lanes side by side"
    assert rec.left["models"] != list(range(12)), "no batch overtook another in the models: the test proves nothing"
    for stage in STAGES:
        assert rec.entered[stage] == list(range(12)), stage
    for stage in ("index", "publish"):
        assert rec.most_inside[stage] == 1, stage
        assert rec.left[stage] == list(range(12)), stage


def test_a_batch_cancelled_while_waiting_for_a_wide_stage_does_not_hold_up_the_others() -> None:
    async def scenario() -> list[int]:
        order = StageOrder(STAGES, {"models": 2})
        tickets = [order.ticket() for _ in range(4)]
        published: list[int] = []
        release = asyncio.Event()

        async def batch(ticket: BatchTicket) -> None:
            try:
                async with ticket.turn("models"):
                    if ticket.seq in (0, 1):  # both lanes held until released; 2 and 3 wait for one
                        await release.wait()
                async with ticket.turn("publish"):
                    published.append(ticket.seq)
            finally:
                ticket.abandon()

        tasks = [asyncio.create_task(batch(t)) for t in tickets]
        await asyncio.sleep(0.02)
        tasks[2].cancel()  # waiting for a lane
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        return published

    assert asyncio.run(scenario()) == [0, 1, 3]


@pytest.mark.parametrize("widths", [{"nowhere": 2}, {"models": 0}])
def test_stage_widths_must_name_stages_and_be_positive(widths: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="widths"):
        StageOrder(STAGES, widths)
