"""Waiting for the machine to go quiet between the stream bench's phases.

Why: a phase leaves work behind it (Milvus compacting and re-indexing the rows it wrote, the
broker's and the JVM's housekeeping); the next phase should start from a machine about as quiet as
the first phase found, or it measures the previous phase's leftovers. "Quiet" is the machine's busy
CPU with the bench's own process left out, against the idle level measured before the first phase.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from infra.bench.cpu import machine_busy_s, process_cpu_s

Reader = Callable[[], float]


def busy_but_this_process_s() -> float:
    """The machine's busy CPU seconds less this process's: the bench's own reader does not count."""
    return machine_busy_s() - (process_cpu_s("self") or 0.0)


class QuietWatch:
    """Says when CPU use has stayed at or under ``max_cores`` for ``quiet_s``, fed one counter reading at a time."""

    def __init__(self, quiet_s: float, max_cores: float) -> None:
        self.quiet_s = quiet_s
        self.max_cores = max_cores
        self.last_cores: float | None = None
        self._quiet_from: float | None = None
        self._previous: tuple[float, float] | None = None

    def feed(self, at_s: float, cpu_s: float) -> bool:
        """True once every interval of the last ``quiet_s`` ran at or under ``max_cores``."""
        if self._previous is not None and at_s > self._previous[0]:
            self.last_cores = (cpu_s - self._previous[1]) / (at_s - self._previous[0])
            if self.last_cores > self.max_cores:
                self._quiet_from = None
            elif self._quiet_from is None:
                self._quiet_from = self._previous[0]
        self._previous = (at_s, cpu_s)
        return self._quiet_from is not None and at_s - self._quiet_from >= self.quiet_s


async def idle_cores(seconds: float, read: Reader = busy_but_this_process_s) -> float:
    """Cores the machine keeps busy over ``seconds`` with nothing asked of it: the level "quiet" is set against."""
    start, before = time.monotonic(), read()
    await asyncio.sleep(seconds)
    return max(0.0, (read() - before) / max(1e-6, time.monotonic() - start))


async def wait_until_quiet(
    quiet_s: float, max_cores: float, limit_s: float, interval_s: float = 0.5, read: Reader = busy_but_this_process_s
) -> dict[str, Any]:
    """Wait (at most ``limit_s``) until the machine, this process left out, has been quiet for ``quiet_s``."""
    watch = QuietWatch(quiet_s, max_cores)
    start = time.monotonic()
    quiet = watch.feed(start, read())
    while not quiet and time.monotonic() - start < limit_s:
        await asyncio.sleep(interval_s)
        quiet = watch.feed(time.monotonic(), read())
    return {
        "waited_s": round(time.monotonic() - start, 1),
        "quiet": quiet,
        "last_cores": None if watch.last_cores is None else round(watch.last_cores, 2),
        "quiet_s": quiet_s,
        "max_cores": round(max_cores, 2),
    }
