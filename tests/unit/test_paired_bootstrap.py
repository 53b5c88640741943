"""The paired bootstrap behind "within noise" claims: zero for equal answers, excludes 0 for a clear gain."""

from __future__ import annotations

import numpy as np

from model_store.distill.paired import paired_interval


def test_identical_answers_give_a_zero_interval():
    a = np.random.default_rng(0).random(500) < 0.9
    assert paired_interval(a, a, draws=200) == (0.0, 0.0, 0.0)


def test_a_clear_gain_excludes_zero_and_a_coin_flip_does_not():
    rng = np.random.default_rng(1)
    a = rng.random(6000) < 0.90
    better = a | (rng.random(6000) < 0.3)  # fixes about 3 points of a's errors, breaks none
    mean, lo, hi = paired_interval(a, better, draws=500)
    assert 0 < lo <= mean <= hi and abs(mean - (better.mean() - a.mean())) < 1e-12
    swapped = a.copy()  # 60 answers won and 60 lost: the same accuracy, different queries
    swapped[rng.choice(np.flatnonzero(a), 60, replace=False)] = False
    swapped[rng.choice(np.flatnonzero(~a), 60, replace=False)] = True
    mean, lo, hi = paired_interval(a, swapped, draws=500)
    assert mean == 0.0 and lo < 0 < hi
