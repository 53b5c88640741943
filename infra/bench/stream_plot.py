"""The stream benchmark's picture: outputs/s over time against the models-only rate, and the latency histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.bench.plotting import plot_rate, pyplot, save, title_and_legend

SMOOTH_S = 5


def plot_stream_report(report: dict[str, Any], latencies_ms: dict[str, list[float]], path: Path) -> Path:
    """Write a two-panel PNG (throughput over time; latency histogram per phase) and return its path."""
    import numpy as np

    plt = pyplot()

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), constrained_layout=True)
    head = report["headline"]
    config = report["config"]
    colours = {"full_load": "tab:blue", "half_load": "tab:orange"}
    labels = {"full_load": "full load (all published at once)", "half_load": "half load (paced)"}
    for name, phase in report["phases"].items():
        series = phase.get("throughput_series") or []  # 1 s bins: a batch leaves every second or so, so it is jagged
        if series:
            plot_rate(
                top, series, SMOOTH_S, color=colours.get(name), label=f"{labels.get(name, name)}, {SMOOTH_S} s mean"
            )
        if name == "full_load" and phase.get("warmup_ends_s") is not None:
            top.axvline(phase["warmup_ends_s"], color="grey", linestyle=":", label="warm-up ends")
    top.axhline(head["models_only_images_per_s"], color="tab:green", linestyle="--", label="models only")
    top.axhline(head["end_to_end_events_per_s"], color="tab:blue", linestyle="--", label="end to end (steady)")
    top.set_xlabel("seconds since the first upload was published")
    top.set_ylabel("outputs per second")
    title_and_legend(
        top,
        f"catalog bench stream: {head['end_to_end_events_per_s']:.0f} events/s end to end vs "
        f"{head['models_only_images_per_s']:.0f} images/s models only (ratio {head['ratio']:.2f}); "
        f"gallery {config['gallery']:,}, Milvus {config['milvus']}, {config['device']}, batch {config['batch_size']}",
        "lower right",
    )

    values = [v for vs in latencies_ms.values() for v in vs if v > 0]
    if values:
        bins = np.logspace(np.log10(max(1.0, min(values))), np.log10(max(values) + 1.0), 60)
        for name, vs in latencies_ms.items():
            summary = report["phases"][name]["latency_ms"]
            ps = " / ".join(f"{q} {summary.get(q)}" for q in ("p50", "p95", "p99"))
            label = f"{labels.get(name, name)}: {ps} ms"
            bottom.hist(vs, bins=bins, alpha=0.6, color=colours.get(name), label=label)
        bottom.set_xscale("log")
    bottom.set_xlabel("latency: submitted_at to the output's Kafka timestamp (ms, log scale)")
    bottom.set_ylabel("events")
    bottom.legend(fontsize=8)
    return save(fig, path)
