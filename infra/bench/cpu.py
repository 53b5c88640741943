"""Where the machine's CPU goes during a run: the worker, the processes it started, this benchmark, the rest.

Why: on a machine the stream saturates, end-to-end events/s is the machine's cores over the CPU
every process spends per event, so the models' share of that CPU bounds the ratio to the models
alone. The counters are the kernel's (``/proc/stat``, ``/proc/<pid>/stat``); "the rest" is the
broker, a Milvus server and whatever else runs on the machine.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bench.memory import descendants
from infra.bench.sampling import PeriodicSampler


def process_cpu_s(pid: int | str) -> float | None:
    """utime + stime of one process, its threads included (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every process of the machine spent (user, nice, system, irq, softirq) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    at_ms: int  # wall clock, epoch ms: comparable with Kafka timestamps
    machine_s: float
    worker_s: float
    children_s: float  # every live process below the worker (the Milvus Lite child)
    bench_s: float  # this process: the benchmark's producer and reader


def cpu_sampler(worker_pid: int, interval_s: float = 0.5) -> PeriodicSampler[CpuSample]:
    """The counters every ``interval_s``, while the worker lives."""

    def read() -> CpuSample | None:
        worker = process_cpu_s(worker_pid)
        if worker is None:
            return None
        children = sum(s for pid in descendants(worker_pid) if (s := process_cpu_s(pid)) is not None)
        return CpuSample(int(time.time() * 1000), machine_busy_s(), worker, children, process_cpu_s("self") or 0.0)

    return PeriodicSampler(read, "cpu-sampler", interval_s)


def cpu_in_window(samples: list[CpuSample], start_ms: int, end_ms: int, events: int) -> dict[str, object] | None:
    """Cores each group used between the first and last sample inside the window, and CPU ms per event.

    None when fewer than two samples fall inside (a window shorter than the sampling interval).
    """
    inside = [s for s in samples if start_ms <= s.at_ms <= end_ms]
    if len(inside) < 2 or events <= 0:
        return None
    first, last = inside[0], inside[-1]
    wall_s = (last.at_ms - first.at_ms) / 1000.0
    spent = {
        "worker": last.worker_s - first.worker_s,
        "worker_children": last.children_s - first.children_s,  # a child restarted meanwhile reads low
        "benchmark": last.bench_s - first.bench_s,
    }
    spent["rest"] = max(0.0, (last.machine_s - first.machine_s) - sum(spent.values()))
    spent["machine"] = last.machine_s - first.machine_s
    share = events * wall_s / ((end_ms - start_ms) / 1000.0) if end_ms > start_ms else events
    return {
        "seconds": round(wall_s, 2),
        "cores": {k: round(v / wall_s, 2) for k, v in spent.items()},
        "cpu_ms_per_event": {k: round(1000.0 * v / share, 2) for k, v in spent.items()},
        "cpus": os.cpu_count(),
        "what": "per group, CPU seconds over the steady window's sampled span; rest = the machine's busy time "
        "less the others (the broker, a Milvus server, the OS); per event: over the events of that span",
    }


def ratio_factors(
    stream_cpu: Mapping[str, Any] | None, models_runs: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The stream-to-models ratio as two measured factors, or None without the counters for both.

    Why: a rate is busy cores over CPU per item, so end to end / models alone =
    (cores the stream kept busy / cores the models alone kept busy) x (the models' CPU per image /
    the machine's CPU per event). The second factor is the models' share of everything the machine
    does per event; the rest of each event's CPU (broker, Milvus, the worker's own Python) is what
    a faster stream has to cut. Both factors come from counters, so their product only approximates
    the headline ratio (different windows, 0.5 s samples).
    """
    if not stream_cpu or not models_runs or any("cpu_ms_per_image" not in r for r in models_runs):
        return None
    models_ms = statistics.fmean(float(r["cpu_ms_per_image"]) for r in models_runs)
    models_cores = statistics.fmean(float(r["cores"]) for r in models_runs)
    stream_ms = float(stream_cpu["cpu_ms_per_event"]["machine"])
    stream_cores = float(stream_cpu["cores"]["machine"])
    if models_ms <= 0 or models_cores <= 0 or stream_ms <= 0:
        return None
    busy, share = stream_cores / models_cores, models_ms / stream_ms
    return {
        "stream_cores": round(stream_cores, 2),
        "models_only_cores": round(models_cores, 2),
        "busy_factor": round(busy, 3),
        "models_cpu_ms_per_image": round(models_ms, 3),
        "stream_cpu_ms_per_event": round(stream_ms, 3),
        "models_share_of_cpu": round(share, 3),
        "product": round(busy * share, 3),
        "what": "ratio ~ busy_factor x models_share_of_cpu; models alone: their process's CPU (before and after "
        "the worker, averaged); stream: the machine's CPU over the full-load steady window; CPU cores only, so "
        "on a GPU run the split says little",
    }
