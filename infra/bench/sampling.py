"""A reading taken every so often on a daemon thread while a benchmark runs (RSS, CPU counters)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PeriodicSampler(Generic[T]):
    """Calls ``read`` every ``interval_s`` and keeps what it returns; None (a process gone) is not kept."""

    def __init__(self, read: Callable[[], T | None], name: str, interval_s: float = 0.5) -> None:
        self._read = read
        self.interval_s = interval_s
        self.samples: list[T] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PeriodicSampler[T]:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self._read()
            if value is not None:
                self.samples.append(value)
            self._stop.wait(self.interval_s)
