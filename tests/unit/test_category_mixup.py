"""Within-category mixup: blends stay inside one category, lean on their own image, and alpha 0 is off."""

from __future__ import annotations

import numpy as np
import torch

from model_store.distill.mixup import category_mixup


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    # image i is the constant i, so a blend's value tells which two images it mixes and how
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, 4, 4).contiguous()
    return x, torch.tensor([0, 0, 0, 1, 1, 2, 0, 1])


def _is_blend(v: float, i: int, j: int) -> bool:
    """v = lam * i + (1 - lam) * j with lam in [0.5, 1]?"""
    if i == j:
        return abs(v - i) < 1e-5
    lam = (v - j) / (i - j)
    return 0.5 - 1e-5 <= lam <= 1 + 1e-5


def test_alpha_zero_leaves_the_batch_alone():
    x, cats = _batch()
    assert category_mixup(x, cats, 0.0, np.random.default_rng(0)) is x


def test_blends_only_same_category_items_with_own_weight_at_least_half():
    x, cats = _batch()
    same = {i: [j for j in range(8) if cats[j] == cats[i]] for i in range(8)}
    mixed_any = False
    for seed in range(20):
        out = category_mixup(x, cats, 1.0, np.random.default_rng(seed))
        assert out.shape == x.shape
        for i in range(8):
            v = float(out[i, 0, 0, 0])
            assert any(_is_blend(v, i, j) for j in same[i]), (seed, i, v)
            mixed_any |= abs(v - i) > 1e-3
        assert float(out[5, 0, 0, 0]) == 5.0  # the only item of its category stays itself
    assert mixed_any


def test_same_rng_same_blend():
    x, cats = _batch()
    a = category_mixup(x, cats, 0.4, np.random.default_rng(3))
    b = category_mixup(x, cats, 0.4, np.random.default_rng(3))
    assert torch.equal(a, b)
