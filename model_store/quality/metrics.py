"""Metrics shared by validation during training and the benchmark."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    return float((np.asarray(pred) == np.asarray(true)).mean())


def confusion(pred: np.ndarray, true: np.ndarray, n: int) -> np.ndarray:
    """[true, predicted] counts."""
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (np.asarray(true), np.asarray(pred)), 1)
    return out


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of [N, 4] box arrays, row by row."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (NaN-safe: 0 when either side is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)
