"""The rollout benchmark's picture: outputs/s over time, with the activation, caught-up and alias-moved moments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.bench.plotting import plot_rate, pyplot, save, title_and_legend

SMOOTH_S = 3


def plot_rollout_report(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG (enriched outputs/s and re-index rows/s over time, the three moments marked); return its path."""
    import numpy as np

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    head, config, moments = report["headline"], report["config"], report["moments_s"]
    series = report.get("throughput_series") or []
    if series:
        plot_rate(ax, series, SMOOTH_S, color="tab:blue", label=f"enriched outputs/s ({SMOOTH_S} s mean)")
    ax.axhline(config["rate"], color="grey", linestyle="--", label=f"producer rate {config['rate']}/s")
    rows = report.get("reindex_series") or []
    if len(rows) > 1:
        t = np.asarray([r[0] for r in rows], dtype=float)
        n = np.asarray([r[1] for r in rows], dtype=float)
        per_s = np.diff(n) / np.maximum(np.diff(t), 1e-3)
        right = ax.twinx()
        right.plot(t[1:], per_s, color="tab:green", alpha=0.6, label="re-index rows/s")
        right.set_ylabel("re-index rows per second")
        right.legend(fontsize=8, loc="upper right")
    for name, colour in (("activated", "tab:red"), ("caught_up", "tab:orange"), ("alias_moved", "tab:purple")):
        ax.axvline(moments[name], color=colour, linestyle=":", label=f"{name.replace('_', ' ')} ({moments[name]} s)")
    ax.set_xlabel("seconds since the first upload was published")
    ax.set_ylabel("enriched outputs per second")
    title_and_legend(
        ax,
        f"catalog bench rollout to {config['to']}: re-index {head['reindex_images_per_s']} images/s vs "
        f"{head['models_only_images_per_s']} model only; switch gap {head['switch_gap_s']} s, rollout "
        f"{head['rollout_s']} s; gallery {config['gallery']:,}, Milvus {config['milvus']}, {config['device']}",
        "upper left",
    )
    return save(fig, path)
