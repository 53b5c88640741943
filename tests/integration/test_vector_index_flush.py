"""Milvus Lite's growing rows are sealed every N upserts and after a bulk load (a file or over http)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.milvus.lite_server import MilvusLiteServer
from processors.gallery import LabelledImages, load_gallery
from processors.vector_index import LITE_FLUSH_EVERY_ROWS, GalleryItem, VectorIndex, VectorIndexConfig
from streams.settings import Settings

pytestmark = pytest.mark.integration


def _items(start: int, count: int, dim: int = 8) -> list[GalleryItem]:
    rng = np.random.default_rng(start)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [GalleryItem(f"p-{start + i}", v, "shirt", "confirmed", "s", 1) for i, v in enumerate(vectors)]


def test_a_lite_gallery_is_flushed_every_n_rows_and_keeps_every_row(tmp_path: Path) -> None:
    config = VectorIndexConfig(uri=str(tmp_path / "m.db"), index_type="FLAT", flush_every_rows=100)
    index = VectorIndex(config, "flush_test", 8)
    index.ensure_collection()
    for start in range(0, 250, 50):
        index.upsert(_items(start, 50))
    assert index.flushes == 2  # at 100 and 200 rows; 50 still growing
    assert index.count() == 250
    sealed, growing = _items(0, 50)[0], _items(200, 50)[49]
    hits = index.search(np.stack([sealed.embedding, growing.embedding]), 1)
    assert [h[0].product_id for h in hits] == ["p-0", "p-249"]  # flushed and still-growing rows are both found


def test_lite_is_flushed_by_default_as_a_file_or_over_http(tmp_path: Path) -> None:
    """The worker's Lite child and a shared ``milvus-lite server`` are reached over http: still Lite."""
    file_index = VectorIndex(VectorIndexConfig(uri=str(tmp_path / "m.db")), "flush_default", 8)
    with MilvusLiteServer(tmp_path / "served") as lite:
        http_index = VectorIndex(VectorIndexConfig(uri=lite.uri), "flush_default", 8)
        try:
            assert (file_index.flush_every_rows(), http_index.flush_every_rows()) == (LITE_FLUSH_EVERY_ROWS,) * 2
            http_index.ensure_collection()
            http_index.upsert(_items(0, LITE_FLUSH_EVERY_ROWS))
            assert http_index.flushes == 1  # sealed at the default count
        finally:
            http_index.close()
            file_index.close()


def test_a_server_is_left_to_seal_its_segments_unless_told(milvus_server_uri: str) -> None:
    assert VectorIndex(VectorIndexConfig(uri=milvus_server_uri), "unused", 8).flush_every_rows() == 0
    chosen = Settings(milvus_uri=milvus_server_uri, milvus_flush_every_rows=500).index_config()
    assert VectorIndex(chosen, "unused", 8).flush_every_rows() == 500


def test_a_bulk_gallery_load_ends_flushed(tmp_path: Path) -> None:
    from processors.embedding import TorchEmbedder

    embedder = TorchEmbedder.from_config(Settings().embedder_config())
    index = VectorIndex(VectorIndexConfig(uri=str(tmp_path / "m.db"), index_type="FLAT"), "bulk", embedder.dim)
    pixels = np.random.default_rng(0).integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    samples = LabelledImages(pixels=pixels, product_ids=[f"g-{i}" for i in range(20)], categories=["bag"] * 20)
    load_gallery(samples, embedder, index)
    assert index.flushes == 1 and index.count() == 20
