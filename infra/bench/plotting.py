"""What the benchmarks' pictures share: pyplot for files, the smoothed outputs/s line, title and legend, saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def plot_rate(ax: Any, series: Sequence[Sequence[float]], smooth_s: int, **line: Any) -> None:
    """Outputs/s over time from ``(seconds, rate)`` pairs, as a running mean over ``smooth_s`` points."""
    import numpy as np

    t, rate = (np.asarray(v, dtype=float) for v in zip(*series, strict=True))
    smooth = np.convolve(rate, np.ones(smooth_s) / smooth_s, mode="same") if len(rate) >= smooth_s else rate
    ax.plot(t, smooth, **line)


def title_and_legend(ax: Any, title: str, loc: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc=loc)


def save(fig: Any, path: Path) -> Path:
    """Write the PNG (its folder made if need be), close the figure, return ``path``."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
