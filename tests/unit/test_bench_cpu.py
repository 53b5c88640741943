"""The stream bench's CPU accounting: which samples count, and how a window's CPU is split per group and per event."""

from __future__ import annotations

import pytest

from infra.bench.cpu import CpuSample, cpu_in_window, process_cpu_s


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
