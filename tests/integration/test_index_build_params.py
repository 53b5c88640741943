"""The gallery's HNSW graph is built with the parameters the settings give, on Lite and on a server.

Why: pymilvus 3 sends build parameters as keys of their own, which Milvus Lite 3.2 ignores (it
reads a ``params`` JSON key), so a setting could be silently dropped; ``describe_index`` reads
back what the backend recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from processors.vector_index import GalleryItem, VectorIndex
from streams.settings import Settings
from tests.milvus_backend import MilvusTarget

pytestmark = pytest.mark.integration


def _settings(target: MilvusTarget, tmp_path: Path, **overrides: object) -> Settings:
    if target.uri is None:
        return Settings(milvus_uri=str(tmp_path / "milvus.db"), **overrides)
    return Settings(
        milvus_uri=target.uri, milvus_token=target.token or None, milvus_collection_prefix=target.prefix, **overrides
    )


def _recorded_build(settings: Settings, name: str) -> dict[str, int]:
    index = VectorIndex(settings.index_config(), name, 8)
    try:
        index.ensure_collection()
        params = index.client.describe_index(index.collection, "embedding")
        vectors = np.eye(8, dtype=np.float32)
        index.upsert([GalleryItem(f"p-{i}", v, "shirt", "confirmed", "s", 1) for i, v in enumerate(vectors)])
        index.flush()
        hits = index.search(vectors[[3]], 1)
        assert hits[0][0].product_id == "p-3"  # the graph built with those parameters answers
    finally:
        index.close()
    return {k: int(params[k]) for k in ("M", "efConstruction") if k in params} | {
        k: int(v) for k, v in (params.get("params") or {}).items() if k in ("M", "efConstruction")
    }


def test_chosen_build_parameters_reach_the_backend(milvus_target: MilvusTarget, tmp_path: Path) -> None:
    chosen = _settings(milvus_target, tmp_path, milvus_index_params={"M": 8, "efConstruction": 40})
    assert _recorded_build(chosen, "build_chosen") == {"M": 8, "efConstruction": 40}


def test_default_build_parameters_per_backend(milvus_target: MilvusTarget, tmp_path: Path) -> None:
    expected = {"M": 16, "efConstruction": 100 if milvus_target.uri is None else 200}
    assert _recorded_build(_settings(milvus_target, tmp_path), "build_default") == expected
