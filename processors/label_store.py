"""Trusted labels kept apart from the vectors, keyed by product id, in the gallery's Milvus.

Why a store of its own: a label is a fact about a product, not about one image or one model.
Kept here it outlives a re-upload, a model switch and an image that has not arrived yet, and
it gives the image path something to re-check after its upsert (see ``processors.labels``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pymilvus import DataType, MilvusClient

from processors.vector_index import STRONG, VectorIndex

_SAFE_ID = re.compile(r"[^A-Za-z0-9_]")
_PLACEHOLDER = [0.0, 0.0]  # Milvus wants a vector field in every collection; labels need none


@dataclass(frozen=True)
class StoredLabel:
    product_id: str
    category: str
    label_source: str
    updated_at_ms: int


def labels_collection(prefix: str) -> str:
    """One label store per deployment prefix, shared by every model's gallery."""
    return _SAFE_ID.sub("_", f"{prefix}_labels")


class LabelStore:
    """Reads and writes trusted labels through the gallery index's client (one connection)."""

    def __init__(self, index: VectorIndex, collection: str) -> None:
        self.index = index
        self.collection = collection

    def ensure_collection(self) -> None:
        self.index.load_on_connect(self.collection)

        def create() -> None:
            client = self.index.client
            if client.has_collection(self.collection):
                client.load_collection(self.collection)
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("product_id", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("category", DataType.VARCHAR, max_length=128)
            schema.add_field("label_source", DataType.VARCHAR, max_length=16)
            schema.add_field("updated_at", DataType.INT64)
            schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(_PLACEHOLDER))
            params = client.prepare_index_params()
            params.add_index("placeholder", index_type="FLAT", metric_type="L2")
            client.create_collection(self.collection, schema=schema, index_params=params)

        self.index.call("create label store", create)

    def put(self, labels: Sequence[StoredLabel]) -> None:
        if not labels:
            return
        rows = [
            {
                "product_id": lab.product_id,
                "category": lab.category,
                "label_source": lab.label_source,
                "updated_at": lab.updated_at_ms,
                "placeholder": _PLACEHOLDER,
            }
            for lab in labels
        ]
        self.index.call("label upsert", lambda: self.index.client.upsert(self.collection, rows))

    def get(self, product_ids: Sequence[str]) -> dict[str, StoredLabel]:
        """Strongly consistent: a label acknowledged before this call is always seen."""
        if not product_ids:
            return {}
        quoted = json.dumps(list(product_ids))
        rows = self.index.call(
            "label query",
            lambda: self.index.client.query(
                self.collection,
                filter=f"product_id in {quoted}",
                output_fields=["product_id", "category", "label_source", "updated_at"],
                consistency_level=STRONG,
            ),
        )
        return {
            str(r["product_id"]): StoredLabel(
                str(r["product_id"]), str(r["category"]), str(r["label_source"]), int(r["updated_at"])
            )
            for r in rows
        }
