"""What growing (unflushed) rows cost a Milvus Lite search, and what a flush buys.

``PYTHONPATH=. python research/experiments/lite_growing_search.py [--rows 10000] [--dim 256]``: a
Lite file in a temporary folder, ``--rows`` random unit vectors upserted in chunks of 1,000 (the
collection as a bulk load leaves it without a flush), then the ms of one search of 1 and of 64
queries (k=21, as the worker asks) before and after ``flush``, and with 64 .. 4,096 rows upserted
again in batches of 64 after the flush (as a worker's batches leave them). Three repeats each;
the medians are printed. This is why ``VectorIndex`` flushes every
``CATALOG_MILVUS_FLUSH_EVERY_ROWS`` rows on a Lite file and a gallery load ends with a flush.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from pymilvus import DataType, MilvusClient


def search_ms(client: MilvusClient, queries: np.ndarray, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.search("g", queries.tolist(), limit=21, consistency_level="Bounded")
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=256)
    args = p.parse_args()
    client = MilvusClient(os.path.join(tempfile.mkdtemp(), "lite.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("product_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=args.dim)
    params = client.prepare_index_params()
    params.add_index("embedding", index_type="FLAT", metric_type="COSINE")
    client.create_collection("g", schema=schema, index_params=params)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, args.rows, 1000):
        chunk = vectors[start : start + 1000]
        client.upsert("g", [{"product_id": f"p{start + i}", "embedding": v.tolist()} for i, v in enumerate(chunk)])
    one, many = search_ms(client, vectors[:1]), search_ms(client, vectors[:64])
    print(f"{args.rows} rows growing: 1 query {one} ms, 64 {many} ms")
    start = time.perf_counter()
    client.flush("g")
    print(f"flush {round((time.perf_counter() - start) * 1000)} ms")
    print(f"flushed: 1 query {search_ms(client, vectors[:1])} ms, 64 {search_ms(client, vectors[:64])} ms")
    done = 0
    for growing in (64, 512, 2048, 4096):
        while done < growing:
            batch = vectors[done % args.rows : done % args.rows + 64]
            client.upsert("g", [{"product_id": f"n{done + i}", "embedding": v.tolist()} for i, v in enumerate(batch)])
            done += 64
        print(f"flushed + {growing} growing: 64 queries {search_ms(client, vectors[:64])} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
