"""Affine jitter of distillation inputs: off at 0, identity-like at tiny strength, deterministic, keeps borders."""

from __future__ import annotations

import numpy as np
import torch

from model_store.distill.jitter import affine_jitter


def _images(n: int = 6) -> torch.Tensor:
    torch.manual_seed(0)
    x = -torch.ones(n, 3, 32, 32)  # a plain item: black backdrop (-1 after scaling)
    x[:, :, 10:22, 12:20] = torch.rand(n, 3, 12, 8)  # the product
    return x


def test_zero_strength_is_off() -> None:
    x = _images()
    assert affine_jitter(x, 0.0, np.random.default_rng(0)) is x


def test_tiny_strength_is_nearly_the_identity() -> None:
    x = _images()
    out = affine_jitter(x, 1e-6, np.random.default_rng(0))
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-3)


def test_jitter_moves_pixels_keeps_backdrop_and_is_deterministic() -> None:
    x = _images()
    a = affine_jitter(x, 0.1, np.random.default_rng(3))
    b = affine_jitter(x, 0.1, np.random.default_rng(3))
    assert torch.equal(a, b)
    assert (a - x).abs().amax(dim=(1, 2, 3)).min() > 0.05  # every image changed
    corners = a[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.allclose(corners, torch.full_like(corners, -1.0))  # border replicated, no grey padding
    # the product's mass is kept up to the zoom: mean brightness above backdrop within 25 %
    mass_in, mass_out = (x + 1).sum(dim=(1, 2, 3)), (a + 1).sum(dim=(1, 2, 3))
    assert ((mass_out / mass_in - 1).abs() < 0.25).all()
