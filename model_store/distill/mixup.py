"""Within-category mixup of distillation inputs ("function matching").

A student that only sees the teachers' training images learns the teachers' answers on exactly
those images, where the teachers themselves are at their most confident; it fits them well there
and less well on new items. Blending each image with another item of the SAME category shows
teacher and student new inputs every step, and keeps [0061] intact: the blend still belongs to
one category, so the sample's category teacher(s) give its target. Only the inputs change; the
loss stays L2 + gamma * CORAL.
"""

from __future__ import annotations

import numpy as np
import torch


def category_mixup(x: torch.Tensor, categories: torch.Tensor, alpha: float, rng: np.random.Generator) -> torch.Tensor:
    """Blend each image with a random same-category image of the batch, weight lambda >= 0.5 on itself.

    lambda ~ Beta(alpha, alpha) folded onto [0.5, 1]; ``alpha <= 0`` returns ``x`` unchanged. An image
    whose category is alone in the batch is left as it is.
    """
    if alpha <= 0:
        return x
    cats = categories.cpu().numpy()
    partner = np.arange(len(cats))
    for c in np.unique(cats):
        members = np.flatnonzero(cats == c)
        partner[members] = rng.choice(members, size=len(members), replace=True)
    lam = rng.beta(alpha, alpha, size=len(cats))
    lam = np.maximum(lam, 1.0 - lam)
    w = torch.from_numpy(lam).to(x.dtype).to(x.device).view(-1, 1, 1, 1)
    mixed = w * x + (1.0 - w) * x[torch.from_numpy(partner).to(x.device)]
    return mixed.contiguous(memory_format=torch.channels_last)
