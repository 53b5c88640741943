"""Confirmed labels from moderation turn gallery rows into trusted KNN voters.

The hand-off with the image path, which may run in another process at the same time, is a
write-then-check on both sides (``LabelStore`` reads are strongly consistent):

- a label is written to the label store first, then the gallery row is read and rewritten;
- an image upserts its row first, then reads the label store and rewrites the rows whose
  label there differs from what it wrote.

Whichever side writes its row last has seen the other's write, so a confirmed label can never
be overwritten by a guess. A label whose image has not arrived yet is kept in the store and
taken by the image when it comes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.label_store import LabelStore, StoredLabel
from processors.vector_index import GalleryItem, VectorIndex


@dataclass(frozen=True)
class LabelUpdate:
    product_id: str
    category: str


@dataclass(frozen=True)
class LabelResult:
    applied: tuple[str, ...]
    unknown: tuple[str, ...]


def apply_labels(
    index: VectorIndex, store: LabelStore, updates: Sequence[LabelUpdate], label_source: str = "confirmed"
) -> LabelResult:
    """Store every label, then rewrite the rows of products already embedded; report the others."""
    latest = {u.product_id: u for u in updates}
    now_ms = int(time.time() * 1000)
    store.put([StoredLabel(pid, u.category, label_source, now_ms) for pid, u in latest.items()])
    rows = index.fetch(list(latest), with_vectors=True)
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


def embedded_products(index: VectorIndex, product_ids: Sequence[str]) -> set[str]:
    """Which of these products have a gallery row now (a pending label's image arrived)."""
    return set(index.fetch(list(product_ids)))
