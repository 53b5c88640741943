"""The twin loss of seed 004, claims 2 to 4.

The twin (same structure, its own weights) scores the clean sample, the main model scores the
noised sample; each has its own labels. With ``v = w_aesthetic * aesthetic + w_noise * noise``
(the visual-experience score of the outputs):

- where ``v_twin >= v_main`` no loss is computed (claim 3): the clean image already scores at
  least as high as its noised version;
- elsewhere the loss is built from the twin's regression loss ``L_twin`` and the main model's
  ``L_main`` (claim 4); here their sum, each the mean squared error over the two sub-scores.

``twin_loss`` returns the batch mean of ``gate * (L_twin + L_main)`` (gated-out samples count as
zero in the mean). The gate carries no gradient. On its own this loss has a trivial minimum (a
main model that scores everything 0 is never gated in), so training adds it to the plain
regression losses of both models (see ``visual_task``).
"""

from __future__ import annotations

import torch


def visual_score(pred: torch.Tensor, weights: tuple[float, float]) -> torch.Tensor:
    """[N, 2] (aesthetic, noise) -> [N] weighted sum."""
    w = torch.as_tensor(weights, dtype=pred.dtype, device=pred.device)
    return pred @ w


def twin_loss(
    twin_pred: torch.Tensor,
    main_pred: torch.Tensor,
    twin_target: torch.Tensor,
    main_target: torch.Tensor,
    weights: tuple[float, float] = (0.5, 0.5),
) -> torch.Tensor:
    """Scalar loss; every argument is [N, 2] (aesthetic, noise) in [0, 1]."""
    if not (twin_pred.shape == main_pred.shape == twin_target.shape == main_target.shape):
        raise ValueError(
            f"shapes differ: twin {tuple(twin_pred.shape)}, main {tuple(main_pred.shape)}, "
            f"targets {tuple(twin_target.shape)} and {tuple(main_target.shape)}"
        )
    with torch.no_grad():
        gate = (visual_score(twin_pred, weights) < visual_score(main_pred, weights)).to(twin_pred.dtype)
    regression_twin = ((twin_pred - twin_target) ** 2).mean(dim=1)
    regression_main = ((main_pred - main_target) ** 2).mean(dim=1)
    return (gate * (regression_twin + regression_main)).mean()
