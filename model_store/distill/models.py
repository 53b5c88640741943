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
    def __init__(self, backbone: Lite0Backbone, dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Linear(LITE0_FEATURE_DIM, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.backbone(x))

    def forward_with_taps(self, x: torch.Tensor, taps: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pooled, tapped = self.backbone.forward_with_taps(x, taps)
        return self.proj(pooled), tapped


def build_embedding_net(
    image_size: int, dim: int = EMBED_DIM, pretrained: bool = True, drop_connect_rate: float = 0.0
) -> EmbeddingNet:
    net = EmbeddingNet(build_lite0(image_size, pretrained=pretrained, drop_connect_rate=drop_connect_rate), dim)
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
