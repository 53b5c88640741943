"""The stream bench's CPU accounting: which samples count, and how a window's CPU is split per group and per event."""

from __future__ import annotations

import asyncio

import pytest

from infra.bench.cpu import CpuSample, QuietWatch, cpu_in_window, process_cpu_s, ratio_factors, wait_until_quiet


def _sample(at_s: float, machine: float, worker: float, children: float, bench: float) -> CpuSample:
    return CpuSample(int(at_s * 1000), machine, worker, children, bench)


def test_cores_and_cpu_per_event_come_from_the_samples_inside_the_window() -> None:
    samples = [
        _sample(0.0, 0.0, 0.0, 0.0, 0.0),  # before the window: left out
        _sample(10.0, 100.0, 50.0, 10.0, 1.0),
        _sample(20.0, 118.0, 60.0, 14.0, 1.5),
        _sample(30.0, 136.0, 70.0, 18.0, 2.0),
        _sample(40.0, 999.0, 999.0, 99.0, 9.0),  # after: left out
    ]
    out = cpu_in_window(samples, 10_000, 30_000, events=2000)
    assert out is not None and out["seconds"] == 20.0
    assert out["cores"] == {"worker": 1.0, "worker_children": 0.4, "benchmark": 0.05, "rest": 0.35, "machine": 1.8}
    assert out["cpu_ms_per_event"]["machine"] == pytest.approx(18.0)  # 36 s of CPU over 2,000 events
    assert out["cpu_ms_per_event"]["worker"] == pytest.approx(10.0)


def test_a_window_with_fewer_than_two_samples_or_no_events_has_no_figure() -> None:
    samples = [_sample(10.0, 1.0, 1.0, 0.0, 0.0), _sample(20.0, 2.0, 2.0, 0.0, 0.0)]
    assert cpu_in_window(samples, 15_000, 30_000, events=100) is None
    assert cpu_in_window(samples, 0, 30_000, events=0) is None


def test_this_process_has_cpu_time_and_a_gone_process_has_none() -> None:
    assert (process_cpu_s("self") or 0.0) > 0.0
    assert process_cpu_s(2**22 + 12345) is None


def test_the_ratio_splits_into_busy_cores_and_the_models_share_of_the_cpu_per_event() -> None:
    # models alone: 2 cores at 4 ms of CPU per image = 500 images/s; the stream: 1.8 cores at 9 ms
    # per event = 200 events/s: ratio 0.4 = (1.8 / 2) x (4 / 9)
    stream = {"cores": {"machine": 1.8}, "cpu_ms_per_event": {"machine": 9.0}}
    runs = [{"cpu_ms_per_image": 3.0, "cores": 1.9}, {"cpu_ms_per_image": 5.0, "cores": 2.1}]
    out = ratio_factors(stream, runs)
    assert out is not None
    assert out["busy_factor"] == pytest.approx(0.9) and out["models_share_of_cpu"] == pytest.approx(0.444, abs=1e-3)
    assert out["product"] == pytest.approx(0.4, abs=1e-3) == (1.8 / 9.0) / (2.0 / 4.0)


def test_without_the_counters_of_both_sides_there_are_no_factors() -> None:
    stream = {"cores": {"machine": 1.8}, "cpu_ms_per_event": {"machine": 9.0}}
    assert ratio_factors(None, [{"cpu_ms_per_image": 3.0, "cores": 2.0}]) is None
    assert ratio_factors(stream, []) is None
    assert ratio_factors(stream, [{"images_per_s": 500.0}]) is None  # a models-only run from before the counters


def test_quiet_means_every_interval_of_the_window_under_the_cores() -> None:
    watch = QuietWatch(quiet_s=2.0, max_cores=0.35)
    readings = [(0.0, 10.0), (0.5, 10.5), (1.0, 10.6), (1.5, 10.7), (2.0, 10.8), (2.5, 11.4), (3.0, 11.5)]
    said = [watch.feed(at, cpu) for at, cpu in readings]
    # 1 core, then 0.2 from 0.5 s to 2.0 s (not yet 2 s of it), then 1.2 cores, which starts the window again
    assert said == [False, False, False, False, False, False, False]
    for at, cpu in [(3.5, 11.6), (4.0, 11.7), (4.5, 11.8)]:
        said.append(watch.feed(at, cpu))
    assert said[-3:] == [False, False, True] and watch.last_cores == pytest.approx(0.2)


def test_waiting_for_quiet_gives_up_at_its_limit() -> None:
    out = asyncio.run(wait_until_quiet(quiet_s=3600.0, max_cores=0.35, limit_s=0.3, interval_s=0.1))
    assert out["quiet"] is False and 0.3 <= out["waited_s"] < 5.0
