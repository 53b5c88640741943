"""Paired bootstrap of an accuracy difference: is system B really better than A on these queries?

Both systems answer the same queries, so the per-query difference is resampled with its pairs; the
interval covers the noise of the query draw (not the noise between training runs).
"""

from __future__ import annotations

import numpy as np


def paired_interval(a: np.ndarray, b: np.ndarray, draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, 2.5 %, 97.5 % bootstrap quantiles), resampling queries with their pairs."""
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(draws)])
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
