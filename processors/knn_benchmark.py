"""KNN category accuracy of an embedder: train-split gallery in Milvus, test-split queries.

It goes through the same ``VectorIndex`` and ``vote_category`` as the worker, so the
figure is the one the stream would produce.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from model_store.vocabulary import DEFAULT_TAXONOMY
from processors.embedding import TorchEmbedder
from processors.gallery import load_gallery
from processors.knn_vote import vote_category
from processors.samples import Style, fashion_mnist_samples
from processors.vector_index import VectorIndex, VectorIndexConfig, collection_name


@dataclass(frozen=True)
class KnnReport:
    model: str
    style: str
    gallery_size: int
    queries: int
    k: int
    fine_accuracy: float
    coarse_accuracy: float
    embed_images_per_s: float
    search_queries_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_knn_benchmark(
    embedder: TorchEmbedder,
    gallery_size: int = 10_000,
    queries: int = 2_000,
    k: int = 20,
    style: Style = "plain",
    milvus_uri: str | None = None,
    seed: int = 0,
    search_batch: int = 500,
) -> KnnReport:
    with tempfile.TemporaryDirectory(prefix="knn-bench-") as tmp:
        uri = milvus_uri or str(Path(tmp) / "bench.db")
        name = collection_name("bench", embedder.model_id, embedder.model_version)
        index = VectorIndex(VectorIndexConfig(uri=uri), name, embedder.dim)
        gallery = fashion_mnist_samples("train", gallery_size, embedder.image_size, style, seed)
        load_gallery(gallery, embedder, index)
        test = fashion_mnist_samples("test", queries, embedder.image_size, style, seed + 1)
        t0 = time.perf_counter()
        vectors = embedder.embed_uint8(test.pixels)
        embed_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fine_hits = coarse_hits = 0
        for start in range(0, len(vectors), search_batch):
            found = index.search(vectors[start : start + search_batch], k, {"confirmed"})
            for truth, neighbours in zip(test.categories[start : start + search_batch], found, strict=True):
                label = vote_category(neighbours, k).label
                fine_hits += label == truth
                coarse_hits += label is not None and DEFAULT_TAXONOMY[label] == DEFAULT_TAXONOMY[truth]
        search_s = time.perf_counter() - t0
        index.close()
    n = len(test.categories)
    return KnnReport(
        model=f"{embedder.model_id}@{embedder.model_version}",
        style=style,
        gallery_size=len(gallery.product_ids),
        queries=n,
        k=k,
        fine_accuracy=round(fine_hits / n, 4),
        coarse_accuracy=round(coarse_hits / n, 4),
        embed_images_per_s=round(n / embed_s, 1),
        search_queries_per_s=round(n / search_s, 1),
    )
