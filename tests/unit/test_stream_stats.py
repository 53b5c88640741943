"""The stream benchmark's arithmetic: warm-up, rates, percentiles, batches recovered from outputs."""

from __future__ import annotations

import numpy as np
import pytest

from processors.stream_stats import (
    Batch,
    batches_from_outputs,
    compute_ms,
    latency_summary,
    models_rate_in_run,
    percentiles,
    rate_series,
    size_summary,
    stage_summary,
    steady_rate,
    within_latency_bound,
)


def batched_outputs(batches: int, size: int, every_ms: int, start_ms: int = 1_000_000) -> list[int]:
    """Timestamps of ``batches`` batches of ``size`` outputs, one batch every ``every_ms`` (a few ms of spread)."""
    return [start_ms + b * every_ms + i % 3 for b in range(batches) for i in range(size)]


def test_steady_rate_of_evenly_spaced_batches() -> None:
    # 100 batches of 50 outputs, one batch every 250 ms: 200 outputs/s
    rate = steady_rate(batched_outputs(100, 50, 250), warmup_fraction=0.05)
    assert rate.warmup_events + rate.events == 5000
    assert rate.events_per_s == pytest.approx(200.0, rel=0.02)


def test_warm_up_is_excluded() -> None:
    slow_start = batched_outputs(5, 50, 2000)  # the first 5 batches: 25 outputs/s (a cold start)
    fast = batched_outputs(95, 50, 250, start_ms=slow_start[-1] + 250)
    with_warmup = steady_rate(slow_start + fast, warmup_fraction=0.05)
    without = steady_rate(slow_start + fast, warmup_fraction=0.0)
    assert with_warmup.events_per_s == pytest.approx(200.0, rel=0.03)
    assert without.events_per_s < 0.85 * with_warmup.events_per_s  # 5000 in 31.8 s: 157


def test_outputs_sharing_the_boundary_timestamp_count_as_warm_up() -> None:
    ts = [1000] * 10 + [2000] * 10  # two batches, each leaving at one instant
    rate = steady_rate(ts, warmup_fraction=0.1)
    assert (rate.events, rate.warmup_events, rate.seconds, rate.events_per_s) == (10, 10, 1.0, 10.0)


def test_steady_rate_refuses_what_has_no_duration() -> None:
    with pytest.raises(ValueError):
        steady_rate([5])
    with pytest.raises(ValueError):
        steady_rate([7, 7, 7])
    with pytest.raises(ValueError):
        steady_rate([1, 2], warmup_fraction=1.0)


def test_percentiles_are_ordered_and_match_numpy() -> None:
    values = list(np.random.default_rng(0).exponential(100.0, 2000))
    got = percentiles(values)
    assert got["p50"] <= got["p95"] <= got["p99"]
    assert got["p95"] == pytest.approx(np.percentile(values, 95), abs=0.05)
    assert percentiles([]) == {}


def test_latency_summary() -> None:
    summary = latency_summary([10.0, 20.0, 30.0, 40.0])
    assert summary["count"] == 4 and summary["mean"] == 25.0 and summary["min"] == 10.0 and summary["max"] == 40.0
    assert summary["p50"] == 25.0
    assert latency_summary([]) == {"count": 0}


def test_rate_series_counts_every_bin_including_empty_ones() -> None:
    series = rate_series([1000, 1100, 1900, 4000], origin_ms=1000, bin_s=1.0)
    assert series == [(0.0, 3.0), (1.0, 0.0), (2.0, 0.0), (3.0, 1.0)]
    assert rate_series([1000, 1100], origin_ms=1000, bin_s=0.5) == [(0.0, 4.0)]
    assert rate_series([], origin_ms=0) == []


def test_batches_are_recovered_from_shared_timings() -> None:
    a = {"intake": 10.0, "embed": 100.5, "batch": 130.0}
    b = {"intake": 12.0, "embed": 98.25, "batch": 125.0}
    outputs = [(2000, b)] * 3 + [(1000, a)] * 4 + [(1001, dict(a))] + [(1500, {})]
    batches = batches_from_outputs(outputs)
    assert [(x.size, x.first_output_ms) for x in batches] == [(5, 1000), (3, 2000)]
    assert batches[0].timings_ms == a


def test_stage_and_size_summaries() -> None:
    batches = [
        Batch(64, 1, {"embed": 100.0, "batch": 200.0}),
        Batch(64, 2, {"embed": 120.0, "batch": 220.0}),
        Batch(10, 3, {"embed": 30.0, "batch": 60.0, "upsert": 5.0}),
    ]
    stages = stage_summary(batches)
    assert stages["embed"]["median"] == 100.0 and stages["embed"]["batches"] == 3
    assert stages["upsert"] == {"batches": 1, "median": 5.0, "p95": 5.0, "mean": 5.0}
    sizes = size_summary(batches, max_size=64)
    assert (sizes["batches"], sizes["min"], sizes["max"], sizes["full_share"]) == (3, 10, 64, 0.667)
    assert size_summary([], 64) == {"batches": 0}


def test_latency_bound() -> None:
    assert within_latency_bound(900.0, 0.5, 250.0) == {"p99_ms": 900.0, "bound_ms": 1000.0, "holds": True}
    assert within_latency_bound(1100.0, 0.5, 250.0)["holds"] is False


def test_compute_time_leaves_out_waiting_and_does_not_count_models_twice() -> None:
    timings = {"intake": 10.0, "embed": 100.0, "quality": 50.0, "inference": 155.0, "search": 30.0, "upsert": 5.0,
               "batch": 400.0}  # fmt: skip
    assert compute_ms(timings) == 200.0
    assert compute_ms({"intake": 10.0, "embed": 100.0, "quality": 50.0, "search": 30.0}) == 190.0


def test_models_rate_inside_the_run() -> None:
    batches = [Batch(64, 1, {"inference": 500.0}), Batch(36, 2, {"inference": 500.0}), Batch(5, 3, {"intake": 1.0})]
    assert models_rate_in_run(batches) == 100.0
    assert models_rate_in_run([Batch(5, 3, {"intake": 1.0})]) is None
