"""``catalog bench rollout`` on a tiny run: real broker, a real worker, Milvus Lite; the report must add up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.bench.rollout import RolloutBenchConfig, run_rollout_bench
from infra.bench.rollout_plot import plot_rollout_report
from streams.commands.bench_rollout import summary_lines
from streams.settings import Settings
from tests.integration.test_bench_stream import _topics

pytestmark = pytest.mark.integration
GALLERY, RATE, NEW = 300, 4.0, "student-gamma0@2"


def test_tiny_rollout_bench_reports_a_sane_run(
    kafka_bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_QUALITY_MODE", "off")  # two embedders and a re-index share two busy cores
    monkeypatch.setenv("CATALOG_ROLLOUT_SWITCH_LAG", "16")  # a re-index phase of some length before the switch
    monkeypatch.setenv("CATALOG_ROLLOUT_BATCH_SIZE", "32")
    config = RolloutBenchConfig(
        gallery=GALLERY, to=NEW, rate=RATE, events=400, batch_size=16, batch_wait_s=0.3, torch_threads=1,
        partitions=2, baseline_s=10.0, warmup_s=3.0, tail_s=4.0, models_only_images=64,
        rollout_timeout_s=240.0, stall_s=60.0, timeout_s=480.0,
    )  # fmt: skip
    settings = Settings(model_ref="student@17")
    report = run_rollout_bench(
        config, settings, bootstrap=kafka_bootstrap_servers, workdir=tmp_path / "work", progress=print
    )

    print("\n".join(summary_lines(report)))  # the figures of this run, in the test's output
    answers = report["answers"]
    assert answers["produced"] >= RATE * config.baseline_s
    assert answers["answered"] == answers["enriched"] == answers["produced"], answers  # every upload answered
    models = report["models"]
    assert models["before"] == "student@17" and models["after"] == NEW
    assert models["changes_once_per_partition"], models
    assert set(models["runs_per_partition"]) == {"0", "1"}
    assert any(seq[-1] == NEW for seq in models["runs_per_partition"].values())

    head, reindex = report["headline"], report["reindex"]
    assert reindex["rows"] >= GALLERY  # the gallery and the uploads so far, re-embedded
    assert head["reindex_images_per_s"] > 0 and head["models_only_images_per_s"] > 0
    assert head["reindex_vs_models_only"] == pytest.approx(
        head["reindex_images_per_s"] / head["models_only_images_per_s"], rel=0.01
    )
    moments = report["moments_s"]
    assert 0 < moments["activated"] <= moments["caught_up"] <= moments["alias_moved"] <= moments["last_upload"]
    assert head["rollout_s"] == pytest.approx(moments["alias_moved"] - moments["activated"], abs=0.1)
    assert head["switch_gap_s"] > 0 and 0 < head["rollout_gap_s"] <= head["rollout_s"]
    assert head["switch_window_s"][0] <= moments["caught_up"] and head["switch_window_s"][1] >= moments["alias_moved"]
    base, during = report["enrichment"]["without_reindex"], report["enrichment"]["during_reindex"]
    for window in (base, during):
        assert window["produced"] == window["answered"] > 0
        lat = window["latency_ms"]
        assert 0 < lat["p50"] <= lat["p99"], lat
    assert base["produced_events_per_s"] == pytest.approx(RATE, rel=0.25)
    assert head["delivered_during_vs_without_reindex"] > 0

    png = plot_rollout_report(report, tmp_path / "rollout.png")
    assert png.stat().st_size > 10_000
    assert not Path(f"/proc/{report['worker']['pid']}").exists()
    assert not [t for t in asyncio.run(_topics(kafka_bootstrap_servers)) if report["run_tag"] in t]
