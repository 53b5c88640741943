"""Exact cosine KNN on torch tensors: k-vote (seed 000 [0069]) and retrieval mAP@R.

``allowed`` masks restrict each query to a sub-gallery (the routing baseline searches only the
gallery of the predicted category). R is always counted over the WHOLE gallery, so a query routed
to the wrong category finds none of its relevant items and scores 0.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def similarities(queries: torch.Tensor, gallery: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """[Q, G] cosine similarities; entries outside ``allowed`` ([Q, G] bool) are -inf."""
    sims = F.normalize(queries.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    if allowed is not None:
        sims = sims.masked_fill(~allowed, float("-inf"))
    return sims


def knn_vote(sims: torch.Tensor, gallery_labels: torch.Tensor, n_classes: int, k: int = 20) -> torch.Tensor:
    """Majority label of the top-k neighbours; ties go to the class with the larger summed similarity."""
    top, idx = sims.topk(k, dim=1)
    valid = torch.isfinite(top)
    labels = gallery_labels[idx]
    votes = torch.zeros(sims.shape[0], n_classes, dtype=torch.float64)
    votes.scatter_add_(1, labels, valid.double())
    tie_break = torch.zeros_like(votes).scatter_add_(1, labels, torch.where(valid, top, 0.0).double())
    return (votes + 1e-3 * tie_break / k).argmax(dim=1)


def map_at_r(sims: torch.Tensor, query_labels: torch.Tensor, gallery_labels: torch.Tensor, chunk: int = 256):
    """Mean over queries of (1/R) * sum_{i<=R} P@i * rel_i, R = same-label items in the whole gallery."""
    counts = torch.bincount(gallery_labels, minlength=int(max(query_labels.max(), gallery_labels.max())) + 1)
    r = counts[query_labels]
    r_max = int(r.max())
    out = []
    for start in range(0, sims.shape[0], chunk):
        s, q, rq = sims[start : start + chunk], query_labels[start : start + chunk], r[start : start + chunk]
        top, idx = s.topk(r_max, dim=1)
        rel = (gallery_labels[idx] == q[:, None]) & torch.isfinite(top)
        ranks = torch.arange(1, r_max + 1)
        within = ranks[None, :] <= rq[:, None]
        precision = rel.cumsum(dim=1).double() / ranks
        out.append((precision * (rel & within)).sum(dim=1) / rq.clamp(min=1))
    return float(torch.cat(out).mean())
