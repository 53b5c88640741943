"""Mild random affine jitter of distillation inputs ("function matching" near the data).

Mixup shows the teachers inputs far from any catalog photo. Small shifts, zooms and turns of the
same image stay close to what uploads look like, yet are new to teacher and student alike; the
teacher sees the jittered image too, so its target stays consistent ([0061]: the sample's
category teacher gives it). Borders replicate the edge pixels, so a plain item keeps its backdrop.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def affine_jitter(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Per image: shift up to ``strength`` of the side, zoom in [1 - s, 1 + s], turn up to s radians.

    ``strength <= 0`` returns ``x`` unchanged.
    """
    if strength <= 0:
        return x
    n = x.shape[0]
    shift = rng.uniform(-strength, strength, size=(n, 2)) * 2.0  # affine_grid spans [-1, 1]
    zoom = rng.uniform(1.0 - strength, 1.0 + strength, size=n)
    turn = rng.uniform(-strength, strength, size=n)  # radians
    cos, sin = np.cos(turn) / zoom, np.sin(turn) / zoom
    theta = np.stack([np.stack([cos, -sin, shift[:, 0]], 1), np.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(torch.from_numpy(theta).to(x.dtype).to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)
