"""The new collection's rows: the new model's vector with the product's labels carried over.

Labels are facts about products, not about a model, so a re-index keeps them: the label store
(trusted labels) has the last word, written back after the upsert exactly as the pipeline does
(write, then read the store and fix: ``processors.labels`` explains why that order is safe
against a label written meanwhile). Before that, a row takes the best label it can see: a
gallery item's trusted category, a trusted row of the old collection, the upload's seller hint,
then whatever the old collection held (its predicted category and quality score).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from processors.label_store import StoredLabel
from processors.vector_index import GalleryItem
from streams.rollout.records import ReplayItem

CONFIRMED = "confirmed"


def new_rows(
    items: Sequence[ReplayItem],
    vectors: np.ndarray,
    previous: Mapping[str, Mapping[str, Any]],
    trusted: Collection[str],
    now_ms: int,
) -> list[GalleryItem]:
    """One row per item, ``vectors[i]`` being item i's embedding by the new model."""
    rows = []
    for item, vector in zip(items, vectors, strict=True):
        old = previous.get(item.product_id)
        if item.trusted_category is not None:
            category, source = item.trusted_category, CONFIRMED
        elif old is not None and old["label_source"] in trusted:
            category, source = str(old["category"]), str(old["label_source"])
        elif item.category_hint:
            category, source = item.category_hint, "seller"
        elif old is not None:
            category, source = str(old["category"]), str(old["label_source"])
        else:
            category, source = "", "predicted"  # no vote here: only trusted rows vote, and they are all carried
        rows.append(
            GalleryItem(
                product_id=item.product_id,
                embedding=np.asarray(vector, dtype=np.float32),
                category=category,
                label_source=source,
                seller_id=item.seller_id,
                updated_at_ms=now_ms,
                quality_total=old.get("quality_total") if old is not None else None,
            )
        )
    return rows


def label_fixes(rows: Sequence[GalleryItem], stored: Mapping[str, StoredLabel]) -> list[GalleryItem]:
    """Rows whose label differs from the label store's: rewritten with the stored label."""
    return [
        replace(row, category=label.category, label_source=label.label_source)
        for row in rows
        if (label := stored.get(row.product_id)) is not None
        and (row.category, row.label_source) != (label.category, label.label_source)
    ]
