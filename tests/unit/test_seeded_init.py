"""Fresh models of every recipe start from the same weights in every process (torch's own start seed does not)."""

from __future__ import annotations

import torch

from model_store.distill.config import RecipeConfig
from model_store.distill.train_student import new_student
from model_store.distill.train_teachers import new_router, new_teacher


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_builders_are_seeded_by_the_recipe() -> None:
    cfg = RecipeConfig()
    torch.manual_seed(1)  # whatever state the caller left behind must not matter
    first = new_student(cfg), new_teacher(cfg, (0, 2, 4)), new_router(cfg)
    torch.manual_seed(2)
    second = new_student(cfg), new_teacher(cfg, (0, 2, 4)), new_router(cfg)
    assert all(_same(a, b) for a, b in zip(first, second, strict=True))
    other = new_student(RecipeConfig(seed=cfg.seed + 1))
    assert not _same(first[0], other)
