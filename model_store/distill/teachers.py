"""The source domain model: a set of teachers and the rule that forms each sample's ``vec_source``.

Each sample is embedded by the teacher(s) of its category (seed 000 [0061]); with several teachers
for one category (claim 3) the taxonomy's ``multi_teacher`` rule applies: ``mean`` averages the
L2-normalised vectors (and the pooled intermediate features) of all of them, ``random`` picks one
per sample. ``vec_source`` is returned L2-normalised: retrieval compares directions only, so the
distillation matches the student to the teachers on the unit sphere where search happens.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model_store.distill.taxonomy import Taxonomy
from model_store.embedding_nets import EmbeddingNet


class TeacherSet(nn.Module):
    """The category teachers; ``whole_batch`` runs each on the whole batch and keeps its rows.

    On CUDA every new input shape costs seconds of kernel set-up (8 s per new sub-batch size on an
    H200 with torch 2.11, cuDNN autotuning off), and per-category sub-batches change size every
    step; one fixed shape per teacher costs a few cheap extra rows instead. On a CPU the extra rows
    are the dominant cost, so there the sub-batches stay.
    """

    def __init__(
        self,
        teachers: Mapping[str, EmbeddingNet],
        taxonomy: Taxonomy,
        whole_batch: bool = False,
        only: Collection[str] | None = None,
    ) -> None:
        """``only``: a subset of the taxonomy's teachers (a fusion of some teachers); each sample then uses
        those of its category's teachers that are in it, and a sample with none of them is an error."""
        super().__init__()
        self.whole_batch = whole_batch
        self.only = None if only is None else frozenset(only)
        if self.only is not None and self.only - set(taxonomy.teachers):
            raise ValueError(f"teachers {sorted(self.only - set(taxonomy.teachers))} are not in the taxonomy")
        missing = (set(taxonomy.teachers) if self.only is None else self.only) - set(teachers)
        if missing:
            raise ValueError(f"taxonomy names teachers that were not given: {sorted(missing)}")
        self.nets = nn.ModuleDict(dict(teachers))
        self.taxonomy = taxonomy

    def assignments(self, fine: Sequence[int], rng: np.random.Generator | None = None) -> list[tuple[str, ...]]:
        """Teachers that form each sample's vec_source (by its true fine class)."""
        lists = [self.taxonomy.teachers_of_fine(int(f)) for f in fine]
        return self._apply_rule(lists, rng)

    def assignments_for_categories(
        self, categories: Sequence[int], rng: np.random.Generator | None = None
    ) -> list[tuple[str, ...]]:
        """Teachers for samples routed to category indices (the FIG. 1 routing baseline)."""
        names = self.taxonomy.categories
        return self._apply_rule([self.taxonomy.teachers_of_category(names[int(c)]) for c in categories], rng)

    def _apply_rule(self, lists: list[tuple[str, ...]], rng: np.random.Generator | None) -> list[tuple[str, ...]]:
        if self.only is not None:
            lists = [tuple(t for t in ts if t in self.only) for ts in lists]
            if not all(lists):
                raise ValueError(f"a sample's category has none of the teachers {sorted(self.only)}")
        if self.taxonomy.multi_teacher == "mean":
            return lists
        rng = rng or np.random.default_rng(0)
        return [(ts[int(rng.integers(len(ts)))],) if len(ts) > 1 else ts for ts in lists]

    def forward(
        self, x: torch.Tensor, assigned: Sequence[tuple[str, ...]], taps: Sequence[int] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(vec_source [N, D] unit norm, pooled tapped features [N, C_l] per tap)."""
        n = x.shape[0]
        vec: torch.Tensor | None = None
        pooled: list[torch.Tensor | None] = [None] * len(taps)
        weight = torch.tensor([1.0 / len(ts) for ts in assigned], device=x.device)
        for name, net in self.nets.items():
            rows = [i for i, ts in enumerate(assigned) if name in ts]
            if not rows:
                continue
            idx = torch.tensor(rows, device=x.device)
            if self.whole_batch:
                out, tapped = net.forward_with_taps(x, taps)
                out, tapped = out[idx], [t[idx] for t in tapped]
            else:
                out, tapped = net.forward_with_taps(x[idx], taps)
            w = weight[idx, None]
            contrib = F.normalize(out.float(), dim=1) * w
            vec = contrib.new_zeros(n, out.shape[1]) if vec is None else vec
            vec = vec.index_add(0, idx, contrib)
            for j, t in enumerate(tapped):
                p = t.float().mean(dim=(2, 3)) * w
                pooled[j] = (p.new_zeros(n, p.shape[1]) if pooled[j] is None else pooled[j]).index_add(0, idx, p)
        if vec is None:
            raise ValueError("no sample was assigned to any teacher")
        return F.normalize(vec, dim=1), [p for p in pooled if p is not None]
