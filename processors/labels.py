"""Confirmed labels from moderation turn gallery rows into trusted KNN voters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.vector_index import GalleryItem, VectorIndex


@dataclass(frozen=True)
class LabelUpdate:
    product_id: str
    category: str


@dataclass(frozen=True)
class LabelResult:
    applied: tuple[str, ...]
    unknown: tuple[str, ...]


def apply_labels(index: VectorIndex, updates: Sequence[LabelUpdate], label_source: str = "confirmed") -> LabelResult:
    """Rewrite the label of products already embedded; unknown products are reported, not invented.

    A row needs a vector, so a label that arrives before its image cannot be stored
    here: the caller decides (the worker dead-letters it for replay).
    """
    latest = {u.product_id: u for u in updates}
    rows = index.fetch(list(latest), with_vectors=True)
    now_ms = int(time.time() * 1000)
    items = [
        GalleryItem(
            product_id=pid,
            embedding=np.asarray(rows[pid]["embedding"], dtype=np.float32),
            category=update.category,
            label_source=label_source,
            seller_id=rows[pid]["seller_id"],
            updated_at_ms=now_ms,
            quality_total=rows[pid].get("quality_total"),
        )
        for pid, update in latest.items()
        if pid in rows
    ]
    index.upsert(items)
    return LabelResult(
        applied=tuple(i.product_id for i in items),
        unknown=tuple(pid for pid in latest if pid not in rows),
    )
