"""Networks of the distillation recipe; teachers, router and student share one Lite0 trunk design.

- ``EmbeddingNet``: Lite0 trunk -> linear projection to ``dim`` (256). ``forward`` returns the
  projection output, which the serving path L2-normalises. Teachers and the student are both
  EmbeddingNets, so a teacher's ``vec_source`` and the student's ``vec_target`` live in R^dim.
- ``PrototypeHead``: the teacher's classifier, a cosine classifier against FIXED unit prototypes,
  one per global fine class plus one shared "other". Every teacher gets the same prototypes (seeded),
  so all teachers' feature spaces share one coordinate system: a sandal vector of the shoes teacher
  and a shirt vector of the clothing teacher point to different prototypes, and the unified
  student can fit all of them at once without categories colliding. It is part of the teacher
  structure, identical for all teachers, so "identical structure, different parameters" holds.
- ``CategoryRouter``: the FIG. 1 baseline's CNN category classifier, the same trunk + linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from model_store.backbones import LITE0_FEATURE_DIM, Lite0Backbone, build_lite0

EMBED_DIM = 256


class EmbeddingNet(nn.Module):
    """Lite0 trunk + projection. ``work_size`` (optional) is the resolution the trunk runs at.

    The input keeps the recipe's image size (one rendering and preprocessing for every model);
    a net with a larger ``work_size`` resizes it inside, which buys the trunk more spatial
    positions per block (3x3 instead of 2x2 at the last stage for 96 vs 64 px) at the same
    parameter count, so stored bytes do not change, only compute.
    """

    def __init__(
        self, backbone: Lite0Backbone, dim: int = EMBED_DIM, work_size: int | None = None,
        head_hidden: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Linear(LITE0_FEATURE_DIM, dim)
        self.correction = None if head_hidden is None else ResidualCorrection(LITE0_FEATURE_DIM, head_hidden, dim)
        self.dim = dim
        self.work_size = work_size

    def heads(self) -> nn.ModuleList:
        """Everything after the trunk (trained with the head learning rate)."""
        return nn.ModuleList([m for m in (self.proj, self.correction) if m is not None])

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        out = self.proj(pooled)
        return out if self.correction is None else out + self.correction(pooled)

    def _at_work_size(self, x: torch.Tensor) -> torch.Tensor:
        if self.work_size is None or x.shape[-1] == self.work_size:
            return x
        size = (self.work_size, self.work_size)
        resized = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
        return resized.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._project(self.backbone(self._at_work_size(x)))

    def forward_with_taps(self, x: torch.Tensor, taps: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pooled, tapped = self.backbone.forward_with_taps(self._at_work_size(x), taps)
        return self._project(pooled), tapped


class ResidualCorrection(nn.Module):
    """A small MLP added to the linear projection; its output layer starts at zero.

    One linear map of one shared trunk feature has to reproduce several teachers' different
    functions; this gives the student a nonlinear stage there. Zero-initialised, a net with it
    computes exactly what the same net without it computes, so a linear-head student warm-starts.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.out = nn.Linear(hidden, out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(pooled)))


def build_embedding_net(
    image_size: int, dim: int = EMBED_DIM, pretrained: bool = True, drop_connect_rate: float = 0.0,
    work_size: int | None = None, head_hidden: int | None = None,
) -> EmbeddingNet:  # fmt: skip
    """An EmbeddingNet fed ``image_size`` inputs; its trunk runs at ``work_size`` when given."""
    trunk = build_lite0(work_size or image_size, pretrained=pretrained, drop_connect_rate=drop_connect_rate)
    net = EmbeddingNet(trunk, dim, work_size if work_size and work_size != image_size else None, head_hidden)
    return net.to(memory_format=torch.channels_last)


def fixed_prototypes(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``n`` orthonormal unit vectors in R^dim, the same for every caller with the same seed."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, n, generator=g))
    return q.T.contiguous()


class PrototypeHead(nn.Module):
    """logits = scale * cos(embedding, prototype of each of the teacher's classes)."""

    def __init__(self, class_ids: Sequence[int], n_global: int, dim: int, scale: float = 16.0, seed: int = 0):
        super().__init__()
        protos = fixed_prototypes(n_global + 1, dim, seed)  # last row: the shared "other"
        rows = [*class_ids, n_global]
        self.register_buffer("prototypes", protos[rows].clone())
        self.scale = scale

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(embedding.float(), dim=1) @ self.prototypes.T


class TeacherNet(nn.Module):
    """An EmbeddingNet plus its prototype head; ``embed`` is the teacher's ``vec_source``."""

    def __init__(self, net: EmbeddingNet, head: PrototypeHead) -> None:
        super().__init__()
        self.net, self.head = net, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))


class CategoryRouter(nn.Module):
    def __init__(self, backbone: Lite0Backbone, n_categories: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(LITE0_FEATURE_DIM, n_categories)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_router(image_size: int, n_categories: int, pretrained: bool = True) -> CategoryRouter:
    router = CategoryRouter(build_lite0(image_size, pretrained=pretrained), n_categories)
    return router.to(memory_format=torch.channels_last)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
