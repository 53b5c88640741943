"""How many intra-op threads a batch gets in the models: every core when alone there, a share beside other lanes.

Why: inference lanes pay off when batches queue (full load: two single-thread forwards side by
side beat one forward split over two threads). At low load a batch is mostly alone in the models,
and on its lane's share of the cores it took about twice as long as on every core, which is
latency for nothing. OpenMP keeps the thread count per calling thread (torch's
``set_num_threads`` from a lane thread changes that lane only), so each lane sets its own count
just before each forward, from the number of lanes busy at that moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
T = TypeVar("T")


class LaneThreads:
    """Counts the lanes in a forward and gives the one starting ``cores // busy`` threads (at least 1)."""

    def __init__(self, cores: int, lanes: int, adaptive: bool = True) -> None:
        if cores < 1 or lanes < 1:
            raise ValueError(f"cores and lanes must be >= 1, got {cores} and {lanes}")
        self.cores = cores
        self.lanes = lanes
        self.adaptive = adaptive
        self._busy = 0
        self._lock = threading.Lock()

    def threads_for_next(self, busy: int) -> int:
        """Threads of a forward that starts with ``busy`` lanes in the models (itself included)."""
        share = busy if self.adaptive else self.lanes
        return max(1, self.cores // max(1, share))

    def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` on this lane's thread with the thread count the busy lanes leave it."""
        with self._lock:
            self._busy += 1
            threads = self.threads_for_next(self._busy)
        try:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)  # this thread's OpenMP count only
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._busy -= 1


def lane_threads_for(lanes: int, cores: int | None, adaptive: bool) -> LaneThreads | None:
    """The lanes' thread keeper, or None where there is nothing to share (one lane, or threads fixed by hand)."""
    return LaneThreads(cores, lanes, adaptive) if cores is not None and lanes > 1 else None


def models_executor(threads: int, name: str) -> ThreadPoolExecutor:
    """Threads that run models outside the lanes, each keeping the creating thread's torch thread count.

    Why: torch starts a new thread on the count set last by any thread, and the lanes set theirs
    before every forward; without this, a re-index thread would start on whatever a lane set last.
    """
    count = torch.get_num_threads()
    return ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=torch.set_num_threads, initargs=(count,))
