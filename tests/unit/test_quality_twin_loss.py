"""The seed-004 twin loss: zero where the twin scores >= the main model, positive otherwise."""

from __future__ import annotations

import pytest
import torch

from model_store.quality.twin_loss import twin_loss, visual_score


def test_zero_where_twin_scores_at_least_main() -> None:
    twin = torch.tensor([[0.8, 0.9], [0.5, 0.5]], requires_grad=True)
    main = torch.tensor([[0.6, 0.5], [0.5, 0.5]], requires_grad=True)  # lower, then equal
    target = torch.tensor([[0.1, 0.1], [0.9, 0.9]])  # far off: the gate alone makes it zero
    loss = twin_loss(twin, main, target, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(twin.grad) == 0 and torch.count_nonzero(main.grad) == 0


def test_hand_computed_case_and_gradients() -> None:
    # row 0: twin v = 0.85 >= main v = 0.55 -> no loss; row 1: twin v = 0.45 < main v = 0.65 -> loss
    twin = torch.tensor([[0.8, 0.9], [0.4, 0.5]], requires_grad=True)
    main = torch.tensor([[0.6, 0.5], [0.7, 0.6]], requires_grad=True)
    twin_target = torch.tensor([[0.8, 1.0], [0.5, 1.0]])
    main_target = torch.tensor([[0.8, 0.4], [0.5, 0.6]])
    # L_twin = ((0.4-0.5)^2 + (0.5-1.0)^2) / 2 = 0.13 ; L_main = ((0.7-0.5)^2 + 0^2) / 2 = 0.02
    loss = twin_loss(twin, main, twin_target, main_target, weights=(0.5, 0.5))
    assert loss.item() == pytest.approx((0.13 + 0.02) / 2, abs=1e-6)
    loss.backward()
    assert torch.count_nonzero(twin.grad[0]) == 0 and torch.count_nonzero(main.grad[0]) == 0
    assert twin.grad[1].abs().sum() > 0 and main.grad[1, 0] > 0  # pushes main's aesthetic down to 0.5
    assert twin.grad[1, 1] < 0  # pushes the twin's noise sub-score up towards its clean label


def test_positive_whenever_gated_in_and_off_target() -> None:
    torch.manual_seed(0)
    twin = torch.rand(64, 2) * 0.5
    main = 0.5 + torch.rand(64, 2) * 0.5  # every main score above its twin's
    loss = twin_loss(twin, main, torch.rand(64, 2), torch.rand(64, 2))
    assert loss.item() > 0


def test_weights_decide_the_gate() -> None:
    twin, main = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    target = torch.zeros(1, 2)
    assert twin_loss(twin, main, target, target, weights=(0.9, 0.1)).item() == 0.0
    assert twin_loss(twin, main, target, target, weights=(0.1, 0.9)).item() > 0.0
    assert visual_score(twin, (0.9, 0.1)).item() == pytest.approx(0.9)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        twin_loss(torch.zeros(2, 2), torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(2, 2))
