"""The stream bench's wait between phases: quiet means every interval of a window under the cores, and it is bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.bench.quiet import QuietWatch, idle_cores, wait_until_quiet


def test_quiet_means_every_interval_of_the_window_under_the_cores() -> None:
    watch = QuietWatch(quiet_s=2.0, max_cores=0.35)
    readings = [(0.0, 10.0), (0.5, 10.5), (1.0, 10.6), (1.5, 10.7), (2.0, 10.8), (2.5, 11.4), (3.0, 11.5)]
    said = [watch.feed(at, cpu) for at, cpu in readings]
    # 1 core, then 0.2 from 0.5 s to 2.0 s (not yet 2 s of it), then 1.2 cores, which starts the window again
    assert said == [False] * 7
    said += [watch.feed(at, cpu) for at, cpu in [(3.5, 11.6), (4.0, 11.7), (4.5, 11.8)]]
    assert said[-3:] == [False, False, True] and watch.last_cores == pytest.approx(0.2)


def _machine(busy_until_s: float, busy_cores: float, idle_cores_: float):  # noqa: ANN202 - a reader
    """A machine busy at ``busy_cores`` for its first ``busy_until_s``, then at ``idle_cores_``: CPU seconds so far."""
    start = time.monotonic()

    def read() -> float:
        t = time.monotonic() - start
        return busy_cores * min(t, busy_until_s) + idle_cores_ * max(0.0, t - busy_until_s)

    return read


def test_the_wait_ends_once_the_leftover_work_is_done() -> None:
    read = _machine(busy_until_s=0.6, busy_cores=1.5, idle_cores_=0.05)
    out = asyncio.run(wait_until_quiet(quiet_s=0.4, max_cores=0.35, limit_s=10.0, interval_s=0.05, read=read))
    assert out["quiet"] is True and 0.9 <= out["waited_s"] <= 3.0, out
    assert out["last_cores"] == pytest.approx(0.05, abs=0.02)


def test_the_wait_gives_up_at_its_limit_on_a_machine_that_stays_busy() -> None:
    read = _machine(busy_until_s=3600.0, busy_cores=1.5, idle_cores_=0.0)
    out = asyncio.run(wait_until_quiet(quiet_s=0.2, max_cores=0.35, limit_s=0.5, interval_s=0.05, read=read))
    assert out["quiet"] is False and 0.5 <= out["waited_s"] < 3.0 and out["last_cores"] == pytest.approx(1.5, abs=0.1)


def test_the_idle_level_is_what_the_machine_spends_with_nothing_asked_of_it() -> None:
    read = _machine(busy_until_s=0.0, busy_cores=0.0, idle_cores_=0.3)
    assert asyncio.run(idle_cores(0.3, read=read)) == pytest.approx(0.3, abs=0.05)
