"""CORAL loss of seed 000 [0065]: zero for equal covariances, hand-computed scale, gradients."""

from __future__ import annotations

import pytest
import torch

from model_store.distill.coral import CoralProjector, coral_loss, covariance, multi_layer_coral


def test_zero_for_identical_covariances():
    torch.manual_seed(0)
    x = torch.randn(32, 5)
    assert float(coral_loss(x, x.clone())) == 0.0
    # a shift changes the means, not the covariance
    assert float(coral_loss(x, x + 3.0)) == pytest.approx(0.0, abs=1e-10)


def test_hand_computed_case():
    # source: 2 samples, d = 2: rows (1, 0), (-1, 0) -> mean 0, C_s = [[2, 0], [0, 0]] (unbiased, n-1 = 1)
    source = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # target: rows (0, 1), (0, -1) -> C_t = [[0, 0], [0, 2]]
    target = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    assert covariance(source).tolist() == [[2.0, 0.0], [0.0, 0.0]]
    # ||C_s - C_t||_F^2 = 2^2 + 2^2 = 8; / (4 d^2) = 8 / 16 = 0.5
    assert float(coral_loss(source, target)) == pytest.approx(0.5)


def test_scale_factor_and_symmetry():
    torch.manual_seed(1)
    s, t = torch.randn(40, 10), torch.randn(40, 10)
    diff = covariance(s) - covariance(t)
    assert float(coral_loss(s, t)) == pytest.approx(float((diff**2).sum() / (4 * 10 * 10)), rel=1e-6)
    assert float(coral_loss(s, t)) == pytest.approx(float(coral_loss(t, s)), rel=1e-6)


def test_gradients_reach_the_target_side():
    torch.manual_seed(2)
    s = torch.randn(16, 4)
    t = torch.randn(16, 4, requires_grad=True)
    loss = coral_loss(s, t)
    loss.backward()
    assert t.grad is not None and float(t.grad.abs().sum()) > 0
    step = t.detach() - 0.5 * t.grad
    assert float(coral_loss(s, step)) < loss.item()


def test_projector_pools_maps_to_100_and_is_frozen():
    proj = CoralProjector([112, 192], dim=100)
    maps = [torch.randn(8, 112, 4, 4), torch.randn(8, 192, 2, 2)]
    out = proj(maps)
    assert [tuple(o.shape) for o in out] == [(8, 100), (8, 100)]
    assert all(not p.requires_grad for p in proj.parameters())
    w = proj.fcs[0].weight  # orthonormal rows: the map keeps second-order statistics' scale
    assert torch.allclose(w @ w.T, torch.eye(100), atol=1e-5)
    same = CoralProjector([112, 192], dim=100)
    assert torch.equal(same.fcs[1].weight, proj.fcs[1].weight)  # seeded: teacher and student agree
    x = torch.randn(8, 112, 4, 4, requires_grad=True)
    loss = multi_layer_coral(proj([maps[0], maps[1]]), proj([x, maps[1] * 2]))
    loss.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        covariance(torch.randn(1, 3))
    with pytest.raises(ValueError):
        coral_loss(torch.randn(4, 3), torch.randn(4, 2))
