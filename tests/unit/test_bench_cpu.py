"""The stream bench's CPU accounting: which samples count, and how a window's CPU is split per group and per event."""

from __future__ import annotations

import pytest

from infra.bench.cpu import CpuSample, cpu_in_window, process_cpu_s, ratio_factors


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
