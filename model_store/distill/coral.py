"""CORAL loss of seed 000 [0065]: L_coral = ||C_source - C_target||_F^2 / (4 d^2).

C are the (unbiased, n-1) covariance matrices over the batch of the designated intermediate-layer
features, each pooled and mapped to ``d`` (100) dimensions by a fully connected layer
(``CoralProjector``). The layer is shared by the teacher and the student side of a tap and frozen
at its random orthogonal initialisation: a trainable map could shrink both covariances to zero and
make the loss trivial, and a shared map compares the same statistics on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def covariance(features: torch.Tensor) -> torch.Tensor:
    """[n, d] -> [d, d] unbiased covariance (needs n >= 2)."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"covariance needs [n >= 2, d] features, got {tuple(features.shape)}")
    centred = features - features.mean(dim=0, keepdim=True)
    return centred.T @ centred / (features.shape[0] - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||C_s - C_t||_F^2 / (4 d^2) for [n, d] source and target features (computed in fp32)."""
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"feature dims differ: {source.shape[1]} vs {target.shape[1]}")
    d = source.shape[1]
    diff = covariance(source.float()) - covariance(target.float())
    return (diff * diff).sum() / (4.0 * d * d)


class CoralProjector(nn.Module):
    """Global-average-pool each tapped block output, then a frozen FC to ``dim`` (100) dimensions."""

    def __init__(self, channels: Sequence[int], dim: int = 100, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fcs = nn.ModuleList()
        for c in channels:
            fc = nn.Linear(c, dim, bias=False)
            weight = torch.randn(max(c, dim), min(c, dim), generator=g)
            q, _ = torch.linalg.qr(weight)  # orthonormal columns
            fc.weight.data.copy_(q.T if c >= dim else q)
            fc.weight.requires_grad_(False)
            self.fcs.append(fc)

    def forward(self, tapped: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [fc(t.mean(dim=(2, 3)) if t.dim() == 4 else t) for fc, t in zip(self.fcs, tapped, strict=True)]


def multi_layer_coral(source: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean of the per-layer CORAL losses (one or several designated layers)."""
    losses = [coral_loss(s, t) for s, t in zip(source, target, strict=True)]
    return torch.stack(losses).mean()
