"""PNG training report: loss terms and eval metrics against steps, plus confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return out


def _curves(ax: plt.Axes, rows: Sequence[Mapping[str, float]], title: str) -> None:
    keys = sorted({k for row in rows for k in row} - {"step"})
    for key in keys:
        pts = [(row["step"], row[key]) for row in rows if key in row]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, label=key)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=7)


def _matrix(ax: plt.Axes, matrix: np.ndarray, labels: Sequence[str], title: str) -> None:
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7, ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)


def save_report(
    path: Path,
    history: Mapping[str, Sequence[Mapping[str, float]]],
    confusions: Mapping[str, tuple[np.ndarray, Sequence[str]]] | None = None,
    title: str = "",
) -> Path:
    """Write one PNG: train loss terms, eval metrics, and one panel per confusion matrix."""
    confusions = dict(confusions or {})
    panels = 2 + len(confusions)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6), squeeze=False)
    _curves(axes[0, 0], history.get("train", []), "training loss terms")
    _curves(axes[0, 1], history.get("eval", []), "validation")
    for ax, (name, (matrix, labels)) in zip(axes[0, 2:], confusions.items(), strict=True):
        _matrix(ax, np.asarray(matrix), labels, name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
