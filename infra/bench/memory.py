"""Resident memory of a process we started, read from ``/proc`` (Linux), sampled while it works.

Why /proc and not a library: ``VmHWM`` is the kernel's own high-water mark of a process's
resident set, exactly the "peak RSS" asked for, and reading it needs nothing installed.
"""

from __future__ import annotations

import time
from pathlib import Path

from infra.bench.sampling import PeriodicSampler


def _status_kib(pid: int | str, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """The process's peak resident set so far (``VmHWM``); None when it cannot be read."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib * 1024


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (its children, theirs...), from ``/proc/<pid>/task/*/children``."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def children_peak_rss(pid: int) -> dict[int, int]:
    """Peak resident set (``VmHWM``) of each live process below ``pid``: what it started (Milvus Lite)."""
    peaks = {child: peak_rss_bytes(child) for child in descendants(pid)}
    return {child: peak for child, peak in peaks.items() if peak is not None}


def rss_bytes(pid: int | str = "self") -> int | None:
    """The process's resident set now (``VmRSS``); None when it cannot be read."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib * 1024


def rss_sampler(pid: int, interval_s: float = 0.5) -> PeriodicSampler[tuple[float, int]]:
    """A process's RSS every ``interval_s``: ``(seconds since the sampler was made, bytes)``."""
    origin = time.monotonic()

    def read() -> tuple[float, int] | None:
        value = rss_bytes(pid)
        return None if value is None else (round(time.monotonic() - origin, 2), value)

    return PeriodicSampler(read, f"rss-{pid}", interval_s)
