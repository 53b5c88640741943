"""``catalog bench stream`` on a small run: real broker, a real worker process, Milvus Lite; the report must add up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.bench.stream import StreamBenchConfig, run_stream_bench
from infra.bench.stream_plot import plot_stream_report
from streams.commands.bench_stream import summary_lines
from streams.settings import Settings

pytestmark = pytest.mark.integration
EVENTS, GALLERY, BATCH = 300, 500, 64


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_small_stream_bench_reports_a_sane_run(kafka_bootstrap_servers: str, tmp_path: Path) -> None:
    config = StreamBenchConfig(
        events=EVENTS,
        gallery=GALLERY,
        batch_size=BATCH,
        batch_wait_s=0.3,
        torch_threads=1,
        partitions=2,
        models_only_images=128,
        stall_s=60.0,
        timeout_s=240.0,
        index_settle_quiet_s=2.0,
        phase_quiet_s=1.0,
        phase_quiet_limit_s=10.0,  # the suite's other tests may keep the machine busy: bounded either way
    )
    report = run_stream_bench(
        config, Settings(), bootstrap=kafka_bootstrap_servers, workdir=tmp_path / "work", progress=lambda _m: None
    )

    head = report["headline"]
    assert head["end_to_end_events_per_s"] > 0 and head["models_only_images_per_s"] > 0 and head["ratio"] > 0
    assert head["ratio"] == pytest.approx(head["end_to_end_events_per_s"] / head["models_only_images_per_s"], rel=0.01)
    full, half = report["phases"]["full_load"], report["phases"]["half_load"]
    assert (full["produced"], full["answered"], full["enriched"], full["dead_lettered"]) == (EVENTS, EVENTS, EVENTS, 0)
    quiet = half["quiet_wait_before"]
    assert quiet is not None and quiet["waited_s"] <= 15.0 and (quiet["quiet"] or quiet["waited_s"] >= 10.0), quiet
    assert quiet["idle_cores_before"] >= 0 and quiet["max_cores"] >= 0.35, quiet  # quiet is set against the idle level
    models_waits = report["models_only"]["quiet_wait_before"]  # the models alone, before and after, on a quiet machine
    assert len(models_waits) == 2 and all(w is not None and w["waited_s"] <= 15.0 for w in models_waits), models_waits
    assert half["produced"] == half["answered"] == half["enriched"] >= 2 * BATCH and half["complete"]
    assert half["target_events_per_s"] == pytest.approx(0.5 * full["steady"]["events_per_s"], rel=0.01)
    for phase in (full, half):
        lat = phase["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], lat
        sizes = phase["batch_sizes"]
        assert sizes["max"] <= BATCH and round(sizes["mean"] * sizes["batches"]) == phase["enriched"], sizes
        assert {"intake", "embed", "search", "upsert"} <= set(phase["stage_ms_per_batch"])
    assert full["steady"]["events"] + full["steady"]["warmup_events"] == EVENTS
    assert half["latency_ms"]["p50"] < full["latency_ms"]["p50"]  # nothing queued at half load
    assert report["half_load_latency_bound"]["bound_ms"] > 0
    assert report["worker"]["peak_rss_bytes"] > 100 * 2**20
    # Milvus Lite runs as the worker's child process; its memory is counted apart, not dropped
    assert report["worker"]["children"] >= 1 and report["worker"]["children_peak_rss_bytes"] > 20 * 2**20
    assert (
        report["worker"]["batches_seen_by_metrics"] == full["batch_sizes"]["batches"] + half["batch_sizes"]["batches"]
    )
    assert report["answers"]["duplicates"] == 0
    cpu = full["cpu"]  # sampled every 0.5 s: a steady window of 2 s or more holds several samples
    if full["steady"]["seconds"] >= 2.0:
        assert cpu is not None and cpu["cores"]["worker"] > 0.1 and cpu["cores"]["worker_children"] > 0, cpu
        # the counters are read a moment apart: the parts may exceed the machine's total by a little
        assert cpu["cores"]["worker"] <= cpu["cores"]["machine"] + 0.2 <= cpu["cpus"] + 0.2, cpu
        factors = head["ratio_factors"]  # the models' own CPU per image came from both models-only runs
        assert factors is not None and factors["models_cpu_ms_per_image"] > 0 and factors["models_only_cores"] > 0.3
        assert 0 < factors["models_share_of_cpu"] < 1.5 and factors["product"] > 0, factors
        # an identity over counters read in different windows: close to the headline, not equal to it
        assert factors["product"] == pytest.approx(head["ratio"], rel=0.35), (factors, head["ratio"])
        assert any(line.startswith("ratio ~ busy cores") for line in summary_lines(report))
    gallery = report["gallery"]  # the worker started once the gallery's index had settled (Lite reports its progress)
    assert gallery["index_settled_s"] >= 2.0 and gallery["pending_index_rows_at_start"] == 0, gallery

    # everything it started is gone, and a broker it did not start keeps none of its topics
    assert not Path(f"/proc/{report['worker']['pid']}").exists()
    assert not [t for t in asyncio.run(_topics(kafka_bootstrap_servers)) if report["run_tag"] in t]

    png = plot_stream_report(report, report.pop("_latencies_ms"), tmp_path / "stream.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
