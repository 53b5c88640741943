"""What HNSW's ``efConstruction`` costs and buys on the shipped student's embeddings.

``PYTHONPATH=. python research/experiments/hnsw_build_params.py --gallery 60000 --queries 5000
--ef-construction 200 100 64 40 --out docs/research/hnsw-efconstruction.json``

Why: Milvus Lite 3.x builds a FAISS ``IndexHNSWFlat`` (``milvus_lite/index/faiss_hnsw.py``) for
every segment a flush seals and again for every segment a compaction writes; in the worker's
Lite child those rebuilds were the largest share of its samples (``docs/operations.md``). This
builds the same FAISS index, with Lite's metric handling (unit vectors, inner product), over one
segment holding the whole gallery (the hardest case for recall: Lite searches smaller segments
and merges), and reports per ``efConstruction``: build CPU per row, recall@k against an exact
search (by id, and counting a hit as similar as the exact k-th, since near-duplicates tie), and
the worker's category vote (``vote_category``) against the exact neighbours' vote and the truth.
Gallery: the seller-style training images; queries: the seller-style test images.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import faiss
import numpy as np

from processors.embedding import TorchEmbedder
from processors.knn_vote import Neighbour, vote_category
from processors.samples import fashion_mnist_samples
from streams.settings import Settings


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def share_equal(a: list, b: list) -> float:
    return round(float(np.mean([x == y for x, y in zip(a, b, strict=True)])), 4)


def votes(ids: np.ndarray, scores: np.ndarray, categories: list[str], k: int) -> list[str | None]:
    """The worker's vote over each query's neighbours (all gallery items are trusted here)."""
    out = []
    for row_ids, row_scores in zip(ids, scores, strict=True):
        neighbours = [
            Neighbour(str(i), categories[i], "confirmed", float(s))
            for i, s in zip(row_ids, row_scores, strict=True)
            if i >= 0
        ]
        out.append(vote_category(neighbours, k).label)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gallery", type=int, default=60_000)
    p.add_argument("--queries", type=int, default=5_000)
    p.add_argument("--ef-construction", type=int, nargs="+", default=[200, 100, 64, 40])
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--out")
    args = p.parse_args()
    settings = Settings()
    k, ef = settings.knn_k, max(settings.milvus_search_ef, settings.knn_k)
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    gallery = fashion_mnist_samples("train", args.gallery, embedder.image_size, "seller", 0)
    queries = fashion_mnist_samples("test", args.queries, embedder.image_size, "seller", 1)
    g = np.ascontiguousarray(embedder.embed_uint8(gallery.pixels), dtype=np.float32)
    q = np.ascontiguousarray(embedder.embed_uint8(queries.pixels), dtype=np.float32)
    categories = list(gallery.categories)
    exact = faiss.IndexFlatIP(g.shape[1])
    exact.add(g)
    exact_scores, exact_ids = exact.search(q, k)
    exact_votes = votes(exact_ids, exact_scores, categories, k)
    truth = list(queries.categories)
    rows = []
    for efc in args.ef_construction:
        index = faiss.IndexHNSWFlat(g.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        c0, w0 = cpu_s(), time.perf_counter()
        index.add(g)
        build_cpu, build_wall = cpu_s() - c0, time.perf_counter() - w0
        index.hnsw.efSearch = ef
        c0 = cpu_s()
        scores, ids = index.search(q, k)
        search_cpu = cpu_s() - c0
        found = votes(ids, scores, categories, k)
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids, strict=True)])
        # a hit as similar as the exact k-th counts too (near-duplicate images tie)
        recall_ties = np.mean((scores >= exact_scores[:, -1:] - 1e-6).sum(axis=1) / k)
        rows.append(
            {
                "efConstruction": efc,
                "build_cpu_s": round(build_cpu, 2),
                "build_wall_s": round(build_wall, 2),
                "build_cpu_us_per_row": round(build_cpu / len(g) * 1e6, 1),
                "search_cpu_us_per_query": round(search_cpu / len(q) * 1e6, 1),
                f"recall_at_{k}": round(float(recall), 4),
                f"recall_at_{k}_ties_counted": round(float(recall_ties), 4),
                "vote_same_as_exact": share_equal(found, exact_votes),
                "vote_accuracy": share_equal(found, truth),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "what": __doc__.splitlines()[0],
        "model": f"{embedder.model_id}@{embedder.model_version}",
        "gallery": len(g),
        "queries": len(q),
        "k": k,
        "efSearch": ef,
        "M": args.m,
        "faiss_threads": faiss.omp_get_max_threads(),
        "exact_vote_accuracy": share_equal(exact_votes, truth),
        "rows": rows,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
