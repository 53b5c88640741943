"""The rollout benchmark's picture: outputs/s over time, with the activation, caught-up and alias-moved moments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SMOOTH_S = 3


def plot_rollout_report(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG (enriched outputs/s and re-index rows/s over time, the three moments marked); return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    head, config, moments = report["headline"], report["config"], report["moments_s"]
    series = report.get("throughput_series") or []
    if series:
        t, rate = (np.asarray(v, dtype=float) for v in zip(*series, strict=True))
        smooth = np.convolve(rate, np.ones(SMOOTH_S) / SMOOTH_S, mode="same") if len(rate) >= SMOOTH_S else rate
        ax.plot(t, smooth, color="tab:blue", label=f"enriched outputs/s ({SMOOTH_S} s mean)")
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
    ax.set_title(
        f"catalog bench rollout to {config['to']}: re-index {head['reindex_images_per_s']} images/s vs "
        f"{head['models_only_images_per_s']} model only; switch gap {head['switch_gap_s']} s, rollout "
        f"{head['rollout_s']} s; gallery {config['gallery']:,}, Milvus {config['milvus']}, {config['device']}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
