"""The byte budget of decodes: bounded pixel memory at once, first come first served, nothing dropped."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from processors.intake import DecodedImage, ImageIntake, IntakeConfig
from processors.intake import intake as intake_module
from processors.intake.budget import ByteBudget
from processors.intake.decode import open_image


async def test_holders_never_exceed_the_capacity_and_all_get_through() -> None:
    budget = ByteBudget(100)
    peak = 0
    done: list[int] = []

    async def job(i: int, amount: int) -> None:
        nonlocal peak
        async with budget.hold(amount):
            peak = max(peak, budget.used)
            await asyncio.sleep(0.001 * (i % 3))
        done.append(i)

    amounts = [40, 70, 10, 100, 30, 60, 5, 90]
    await asyncio.gather(*(job(i, a) for i, a in enumerate(amounts)))
    assert sorted(done) == list(range(len(amounts))) and peak <= 100 and budget.used == 0


async def test_an_oversized_holder_runs_alone_and_is_not_refused() -> None:
    budget = ByteBudget(100)
    inside: list[str] = []
    overlaps: list[list[str]] = []

    async def job(name: str, amount: int) -> None:
        async with budget.hold(amount) as got:
            assert got <= 100
            inside.append(name)
            overlaps.append(list(inside))
            await asyncio.sleep(0.01)
            inside.remove(name)

    await asyncio.gather(job("a", 30), job("huge", 10_000), job("b", 30))
    huge_view = next(view for view in overlaps if "huge" in view)
    assert huge_view == ["huge"]


async def test_waiters_are_served_in_arrival_order() -> None:
    budget = ByteBudget(100)
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with budget.hold(60):
            await release.wait()

    async def later(name: str, amount: int) -> None:
        async with budget.hold(amount):
            order.append(name)

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    big = asyncio.create_task(later("big", 90))  # must wait for the first holder
    await asyncio.sleep(0)
    small = asyncio.create_task(later("small", 10))  # would fit now, but queues behind "big"
    await asyncio.sleep(0.01)
    assert order == []
    release.set()
    await asyncio.gather(holder, big, small)
    assert order == ["big", "small"]


async def test_a_cancelled_waiter_frees_its_place() -> None:
    budget = ByteBudget(100)
    release = asyncio.Event()

    async def hold(amount: int) -> None:
        async with budget.hold(amount):
            await release.wait()

    holder = asyncio.create_task(hold(80))
    await asyncio.sleep(0)
    blocked = asyncio.create_task(hold(50))
    await asyncio.sleep(0)
    after = asyncio.create_task(hold(10))  # queued behind the blocked one
    await asyncio.sleep(0.01)
    blocked.cancel()
    await asyncio.sleep(0.01)
    assert budget.used == 90  # the cancelled head no longer holds the small one back
    release.set()
    await asyncio.gather(holder, after)
    assert budget.used == 0


def jpeg_b64(width: int, height: int, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize(("fits", "expect_overlap"), [(1, False), (8, True)])
async def test_intake_decodes_within_the_byte_budget(
    monkeypatch: pytest.MonkeyPatch, fits: int, expect_overlap: bool
) -> None:
    """With room for one decode at a time they run one by one; with room for many they overlap. None is lost."""
    refs = [(jpeg_b64(400, 300, i), None) for i in range(6)]
    one = open_image(base64.b64decode(refs[0][0]), IntakeConfig()).peak_bytes
    running, peak = 0, 0
    lock = threading.Lock()
    real = intake_module.finish_decode

    def observed(*args: object) -> DecodedImage:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.03)  # long enough for the others to pile up if the budget let them
            return real(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(intake_module, "finish_decode", observed)
    config = IntakeConfig(max_decoding_bytes=int(one * (fits + 0.5)), max_concurrent_decodes=4)
    async with ImageIntake(config) as intake:
        results = await intake.load_many(refs, concurrency=6)
    assert all(isinstance(r, DecodedImage) for r in results)
    assert [r.image.size for r in results] == [(400, 300)] * 6  # type: ignore[union-attr]
    assert (peak > 1) == expect_overlap, peak
    assert peak <= fits
