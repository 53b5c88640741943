"""The statistics of an end-to-end stream run, from what the output topic shows.

Why pure functions: the stream benchmark (``catalog bench stream``) and its tests read the same
numbers, and how a figure is computed (which outputs count as warm-up, how a percentile is
taken, how batches are told apart) must be checkable without a broker.

Inputs are Kafka record timestamps (ms since the epoch) of the outputs, latencies in ms, and
the ``timings`` dict every enriched event carries: the events of one micro-batch carry the same
dict, which is how batches are recovered from the output alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class SteadyRate:
    """Outputs per second between the end of the warm-up and the last output."""

    events: int  # outputs counted (after the warm-up boundary)
    warmup_events: int  # outputs at or before the boundary, not counted
    seconds: float
    events_per_s: float
    start_ms: int  # the warm-up boundary: timestamp of the last warm-up output
    end_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Batch:
    """One micro-batch recovered from its outputs: how many events carried its timings, and the timings."""

    size: int
    first_output_ms: int
    timings_ms: Mapping[str, float]


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[int] = PERCENTILES) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ...}`` (numpy's linear interpolation); empty input: no keys."""
    if len(values) == 0:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(arr, q)), 1) for q in qs}


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Count, percentiles, mean and max of latencies in ms."""
    if len(latencies_ms) == 0:
        return {"count": 0}
    arr = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "count": len(arr),
        **percentiles(arr),
        "mean": round(float(arr.mean()), 1),
        "min": round(float(arr.min()), 1),
        "max": round(float(arr.max()), 1),
    }


def steady_rate(output_ms: Sequence[int], warmup_fraction: float = 0.05, min_warmup: int = 1) -> SteadyRate:
    """Steady-state outputs/s: the first ``warmup_fraction`` of outputs (at least ``min_warmup``) are warm-up.

    The boundary is the timestamp of the last warm-up output; every output after it counts,
    divided by the time from the boundary to the last output. Outputs leave in batches with
    near-equal timestamps, so counting from a batch's own timestamp would count that batch
    with no time for it; outputs sharing the boundary's timestamp are warm-up too.
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError("warmup_fraction must be in [0, 1)")
    ordered = sorted(int(t) for t in output_ms)
    if len(ordered) < 2:
        raise ValueError("need at least two outputs for a rate")
    skip = min(len(ordered) - 1, max(min_warmup, int(len(ordered) * warmup_fraction)))
    start = ordered[skip - 1]
    counted = [t for t in ordered if t > start]
    if not counted:
        raise ValueError("every output shares the warm-up boundary's timestamp: no time to divide by")
    seconds = (ordered[-1] - start) / 1000.0
    return SteadyRate(
        events=len(counted),
        warmup_events=len(ordered) - len(counted),
        seconds=round(seconds, 3),
        events_per_s=round(len(counted) / seconds, 1),
        start_ms=start,
        end_ms=ordered[-1],
    )


def rate_series(output_ms: Sequence[int], origin_ms: int, bin_s: float = 1.0) -> list[tuple[float, float]]:
    """``(seconds since origin, outputs/s)`` per bin of ``bin_s``, empty bins included, for a plot."""
    if bin_s <= 0:
        raise ValueError("bin_s must be positive")
    if len(output_ms) == 0:
        return []
    offsets = (np.asarray(output_ms, dtype=np.float64) - origin_ms) / 1000.0
    bins = np.floor(offsets / bin_s).astype(np.int64)
    first, last = int(bins.min()), int(bins.max())
    counts = np.bincount(bins - first, minlength=last - first + 1)
    return [(round((first + i) * bin_s, 3), round(float(n) / bin_s, 2)) for i, n in enumerate(counts)]


def batches_from_outputs(outputs: Iterable[tuple[int, Mapping[str, float]]]) -> list[Batch]:
    """Group ``(timestamp ms, timings)`` of enriched outputs into the micro-batches that made them.

    Events of one batch carry an identical timings dict (ms with three decimals), so two
    batches sharing one is practically impossible; outputs without timings are skipped.
    """
    groups: dict[str, list[Any]] = {}
    for ts, timings in outputs:
        if not timings:
            continue
        key = json.dumps(dict(timings), sort_keys=True)
        group = groups.setdefault(key, [0, int(ts), dict(timings)])
        group[0] += 1
        group[1] = min(group[1], int(ts))
    batches = [Batch(size=n, first_output_ms=first, timings_ms=t) for n, first, t in groups.values()]
    return sorted(batches, key=lambda b: b.first_output_ms)


def stage_summary(batches: Sequence[Batch]) -> dict[str, dict[str, float]]:
    """Per stage: median, p95 and mean ms per batch, and in how many batches the stage ran."""
    per_stage: dict[str, list[float]] = {}
    for batch in batches:
        for stage, ms in batch.timings_ms.items():
            per_stage.setdefault(stage, []).append(float(ms))
    out = {}
    for stage, values in per_stage.items():
        arr = np.asarray(values)
        out[stage] = {
            "batches": len(values),
            "median": round(float(np.median(arr)), 1),
            "p95": round(float(np.percentile(arr, 95)), 1),
            "mean": round(float(arr.mean()), 1),
        }
    return out


def size_summary(batches: Sequence[Batch], max_size: int) -> dict[str, float]:
    """Batch sizes: count, mean, median, min, max, and the share of batches that were full (``max_size``)."""
    if not batches:
        return {"batches": 0}
    sizes = np.asarray([b.size for b in batches])
    return {
        "batches": len(sizes),
        "mean": round(float(sizes.mean()), 1),
        "median": float(np.median(sizes)),
        "min": int(sizes.min()),
        "max": int(sizes.max()),
        "full_share": round(float((sizes >= max_size).mean()), 3),
    }


def compute_ms(timings: Mapping[str, float]) -> float:
    """One batch's own work: intake + models + search + upsert, without time spent waiting for a turn.

    ``batch`` is wall time from the batch's start to its end, which with overlapped stages
    includes waiting for the stage ahead; ``inference`` already holds ``embed`` and ``quality``.
    """
    models = timings.get("inference")
    if models is None:
        models = timings.get("embed", 0.0) + timings.get("quality", 0.0)
    return float(models) + sum(float(timings.get(k, 0.0)) for k in ("intake", "search", "upsert"))


def models_rate_in_run(batches: Sequence[Batch], lanes: int = 1) -> float | None:
    """Images/s of the models inside the worker during the run: images over the summed ``inference`` ms, x lanes.

    A yardstick taken at the same moments as the end-to-end figure (so it moves with the
    machine's load), but while the worker's other stages compete for the CPU. With several
    lanes, batches run in the models side by side, so this is the rate with every lane busy.
    """
    timed = [(b.size, ms) for b in batches if (ms := b.timings_ms.get("inference"))]
    total_ms = sum(float(ms) for _, ms in timed)
    return round(lanes * sum(n for n, _ in timed) / (total_ms / 1000.0), 1) if total_ms > 0 else None


def within_latency_bound(p99_ms: float, batch_wait_s: float, batch_compute_ms: float) -> dict[str, float | bool]:
    """The issue's check at half load: p99 <= the batch wait + 2 x one batch's compute time."""
    bound = batch_wait_s * 1000.0 + 2.0 * batch_compute_ms
    return {"p99_ms": round(p99_ms, 1), "bound_ms": round(bound, 1), "holds": p99_ms <= bound}
