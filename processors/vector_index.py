"""The catalog gallery in Milvus: one collection per embedding model version, keyed by product id.

Every pymilvus failure is translated into ``TransientFailure`` so the stream layer
retries rather than dead-letters: an unreachable index is never the input's fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pymilvus import DataType, MilvusClient

from processors.errors import ConfigurationError, TransientFailure
from processors.index_params import build_params, is_lite_version, search_params, wire_build_params
from processors.knn_vote import Neighbour

T = TypeVar("T")
LITE_FLUSH_EVERY_ROWS = 2048  # measured: growing rows cost Lite searches ~0.1 s per few thousand
LABEL_SOURCES = ("confirmed", "seller", "predicted")
NO_QUALITY = -1.0  # stored for "no quality score": nullable fields need Milvus 2.5, scores lie in [0, 1]
STRONG = "Strong"  # reads that decide a write, and counts, must see every acknowledged write
_SAFE_ID = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class VectorIndexConfig:
    uri: str = "./data/milvus.db"
    collection_prefix: str = "catalog"
    token: str | None = None
    index_type: str = "HNSW"
    index_params: tuple[tuple[str, Any], ...] = ()
    metric: str = "COSINE"
    search_ef: int = 128
    search_nprobe: int = 32
    search_consistency: str = "Bounded"
    # seal the growing segment after this many upserted rows; 0: leave it to Milvus;
    # None: LITE_FLUSH_EVERY_ROWS on Milvus Lite (a file or over http), 0 on a server
    flush_every_rows: int | None = None


@dataclass(frozen=True)
class GalleryItem:
    product_id: str
    embedding: np.ndarray
    category: str
    label_source: str
    seller_id: str
    updated_at_ms: int
    quality_total: float | None = None


def collection_name(prefix: str, model_id: str, model_version: str) -> str:
    """Vectors of different models must never mix: the name carries id and version."""
    return _SAFE_ID.sub("_", f"{prefix}_{model_id}_{model_version}")


def alias_name(prefix: str) -> str:
    """The stable name workers use: it points at the collection of the model in service."""
    return _SAFE_ID.sub("_", f"{prefix}_gallery")


def _quote(values: Sequence[str]) -> str:
    return json.dumps(list(values))


class VectorIndex:
    """Batched access to one Milvus collection; every method is one client call or few.

    With ``alias`` set, every read and write goes through the alias (bound to ``collection``
    by ``ensure_collection``), so a model switch can later move it atomically.
    """

    def __init__(self, config: VectorIndexConfig, collection: str, dim: int, alias: str | None = None) -> None:
        self.config = config
        self.collection = collection
        self.dim = dim
        self.alias = alias
        self._client: MilvusClient | None = None
        self._also_load: set[str] = set()
        self._unflushed = 0  # rows upserted since the last flush
        self.flushes = 0
        self._lite: bool | None = None

    def load_on_connect(self, collection: str) -> None:
        """Another collection this client serves (the label store): reloaded with ours after a reconnect."""
        self._also_load.add(collection)

    @property
    def target(self) -> str:
        """The name every data call uses: the alias when there is one."""
        return self.alias or self.collection

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one client call; anything but a configuration error means "index unavailable"."""
        try:
            return fn()
        except (TransientFailure, ConfigurationError):
            raise
        except Exception as exc:  # pymilvus raises many types; all mean "index unavailable"
            self._client = None
            raise TransientFailure("vector_index_unavailable", f"milvus {what} failed: {exc}", stage="index") from exc

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            uri = self.config.uri
            if "://" not in uri:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            self._client = self.call("connect", lambda: self._connect(uri))
        return self._client

    def _connect(self, uri: str) -> MilvusClient:
        client = MilvusClient(uri=uri, token=self.config.token or "")
        for name in sorted({self.collection, *self._also_load}):
            if client.has_collection(name):
                client.load_collection(name)  # a reopened Lite DB or restarted server starts released
        return client

    def is_lite(self) -> bool:
        """Milvus Lite, as a file or served over http: it builds with defaults of its own (``LITE_BUILD_DEFAULTS``)."""
        if self._lite is None:
            self._lite = is_lite_version(self.call("server version", lambda: self.client.get_server_version()))
        return self._lite

    def index_build(self) -> dict[str, Any]:
        """The build parameters a collection this index creates gets on this backend."""
        return build_params(self.config.index_type, dict(self.config.index_params), lite=self.is_lite())

    def ensure_collection(self) -> None:
        def create() -> None:
            client = self.client
            if client.has_collection(self.collection):
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("product_id", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("category", DataType.VARCHAR, max_length=128)
            schema.add_field("label_source", DataType.VARCHAR, max_length=16)
            schema.add_field("seller_id", DataType.VARCHAR, max_length=256)
            schema.add_field("quality_total", DataType.FLOAT)  # NO_QUALITY when unscored
            schema.add_field("updated_at", DataType.INT64)
            index = client.prepare_index_params()
            index.add_index(
                "embedding",
                index_type=self.config.index_type,
                metric_type=self.config.metric,
                params=wire_build_params(self.index_build()),
            )
            client.create_collection(self.collection, schema=schema, index_params=index)

        self.call("create collection", create)
        if self.alias:
            self.call("bind alias", self._bind_alias)

    def _bind_alias(self) -> None:
        """Point a missing alias at our collection; refuse one that serves another model."""
        client = self.client
        current = None
        if self.alias in client.list_aliases().get("aliases", []):
            current = client.describe_alias(self.alias).get("collection_name")
        if current is None:
            client.create_alias(self.collection, self.alias)
            return
        if current != self.collection:
            raise ConfigurationError(
                "alias_mismatch",
                f"Milvus alias {self.alias!r} points to {current!r}, but this process serves {self.collection!r}: "
                "vectors of two models must never mix. Switch the alias with a model rollout, or use another "
                "CATALOG_MILVUS_COLLECTION_PREFIX.",
                stage="index",
            )

    def upsert(self, items: Sequence[GalleryItem]) -> None:
        if not items:
            return
        rows = [
            {
                "product_id": it.product_id,
                "embedding": np.asarray(it.embedding, dtype=np.float32).tolist(),
                "category": it.category,
                "label_source": it.label_source,
                "seller_id": it.seller_id,
                "quality_total": NO_QUALITY if it.quality_total is None else float(it.quality_total),
                "updated_at": it.updated_at_ms,
            }
            for it in items
        ]
        self.call("upsert", lambda: self.client.upsert(self.target, rows))
        self._unflushed += len(rows)
        every = self.flush_every_rows()
        if every and self._unflushed >= every:
            self.flush()

    def flush_every_rows(self) -> int:
        """The configured count, else Milvus Lite's (asked of the backend) or 0 on a server."""
        if self.config.flush_every_rows is not None:
            return self.config.flush_every_rows
        return LITE_FLUSH_EVERY_ROWS if self.is_lite() else 0

    def flush(self) -> None:
        """Seal the rows written so far into a segment that searches use an index on.

        Why: Milvus Lite searches rows that are still in a growing segment by brute force with a
        large fixed cost (measured here: ~0.4-0.6 s per search of a 10k-row gallery left growing,
        ~0.1-0.15 s once flushed, ~0.2-0.3 s with a few thousand growing rows); a server seals
        segments itself, so it is not flushed there unless ``flush_every_rows`` says so.
        """
        self.call("flush", lambda: self.client.flush(self.collection))
        self._unflushed = 0
        self.flushes += 1

    def search(
        self, vectors: np.ndarray, limit: int, label_sources: Collection[str] | None = None
    ) -> list[list[Neighbour]]:
        """One Milvus call for the whole batch (each call costs ~100 ms of fixed overhead on Lite)."""
        if len(vectors) == 0:
            return []
        kwargs: dict[str, Any] = {
            "data": np.asarray(vectors, dtype=np.float32).tolist(),
            "limit": limit,
            "output_fields": ["category", "label_source"],
            "search_params": {
                "metric_type": self.config.metric,
                "params": search_params(
                    self.config.index_type, limit, self.config.search_ef, self.config.search_nprobe
                ),
            },
            "consistency_level": self.config.search_consistency,
        }
        if label_sources is not None:
            kwargs["filter"] = f"label_source in {_quote(sorted(label_sources))}"
        hits = self.call("search", lambda: self.client.search(self.target, **kwargs))
        return [
            [
                Neighbour(
                    product_id=str(h["product_id"] if "product_id" in h else h["id"]),
                    category=h["entity"]["category"],
                    label_source=h["entity"]["label_source"],
                    score=float(h["distance"]),
                )
                for h in per_query
            ]
            for per_query in hits
        ]

    def fetch(self, product_ids: Sequence[str], with_vectors: bool = False) -> dict[str, dict[str, Any]]:
        if not product_ids:
            return {}
        fields = ["product_id", "category", "label_source", "seller_id", "quality_total", "updated_at"]
        if with_vectors:
            fields.append("embedding")
        rows = self.call(
            "query",
            lambda: self.client.query(
                self.target,
                filter=f"product_id in {_quote(product_ids)}",
                output_fields=fields,
                consistency_level=STRONG,
            ),
        )
        return {str(r["product_id"]): _stored_row(r) for r in rows}

    def count(self) -> int:
        rows = self.call(
            "count",
            lambda: self.client.query(self.target, filter="", output_fields=["count(*)"], consistency_level=STRONG),
        )
        return int(rows[0]["count(*)"])

    def ping(self) -> None:
        """One cheap round trip: raises ``TransientFailure`` while Milvus does not answer."""
        self.call("ping", lambda: self.client.has_collection(self.collection))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


def _stored_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the pipeline sees it: the no-quality marker back to None."""
    out = dict(row)
    total = out.get("quality_total")
    if total is not None and total < 0:
        out["quality_total"] = None
    return out
