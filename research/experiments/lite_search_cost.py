"""What one worker-shaped search costs Milvus Lite, per index type and per batch size.

``PYTHONPATH=. python research/experiments/lite_search_cost.py [--rows 10000 60000] [--nq 64 256]``:
for each index type a Lite file in a temporary folder holds ``--rows`` random unit vectors with the
worker's scalar fields (a third of them trusted), loaded and flushed as a gallery load leaves them,
plus 1,024 rows upserted after the flush in batches of 64 (what a worker leaves growing between
its flushes). Then the median wall and CPU ms of one search as the worker sends it (k=21, a
``label_source in [...]`` filter, two output fields) for each ``--nq``, and per query. The engine
runs in this process, so its CPU time is this process's. ``--row-cache`` measures each search twice,
with Lite's own ``Segment.row_to_dict`` and with ``streams.milvus_lite_rows`` installed, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import milvus_lite
import numpy as np
from milvus_lite.engine import collection
from milvus_lite.storage.segment import Segment
from pymilvus import DataType, MilvusClient

from streams.milvus_lite_rows import install

SOURCES = ("confirmed", "seller", "predicted")


def rows(vectors: np.ndarray, prefix: str, offset: int = 0) -> list[dict]:
    return [
        {
            "product_id": f"{prefix}{offset + i}",
            "embedding": v.tolist(),
            "category": f"c{(offset + i) % 10}",
            "label_source": SOURCES[(offset + i) % 3],
            "seller_id": "s",
            "quality_total": 0.5,
            "updated_at": 0,
        }
        for i, v in enumerate(vectors)
    ]


def build(client: MilvusClient, index_type: str, vectors: np.ndarray) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("product_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    schema.add_field("category", DataType.VARCHAR, max_length=16)
    schema.add_field("label_source", DataType.VARCHAR, max_length=16)
    schema.add_field("seller_id", DataType.VARCHAR, max_length=16)
    schema.add_field("quality_total", DataType.FLOAT)
    schema.add_field("updated_at", DataType.INT64)
    params = client.prepare_index_params()
    params.add_index("embedding", index_type=index_type, metric_type="COSINE")
    client.create_collection("g", schema=schema, index_params=params)
    for start in range(0, len(vectors), 2000):
        client.upsert("g", rows(vectors[start : start + 2000], "p", start))
    client.flush("g")
    for start in range(0, 1024, 64):
        client.upsert("g", rows(vectors[start : start + 64], "n", start))


def search_ms(client: MilvusClient, queries: np.ndarray, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        client.search(
            "g",
            queries.tolist(),
            limit=21,
            filter='label_source in ["confirmed", "seller"]',
            output_fields=["category", "label_source"],
            search_params={"metric_type": "COSINE", "params": {"ef": 128, "nprobe": 32}},
            consistency_level="Bounded",
        )
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000])
    p.add_argument("--nq", type=int, nargs="+", default=[64, 256])
    p.add_argument("--index", nargs="+", default=["HNSW", "FLAT", "IVF_FLAT"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--row-cache", action="store_true", help="also measure with streams.milvus_lite_rows installed")
    p.add_argument("--out", default="")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    lites_own = Segment.row_to_dict, collection.execute_search_with_index
    results = []
    for n in args.rows:
        vectors = rng.standard_normal((n, args.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for index_type in args.index:
            client = MilvusClient(os.path.join(tempfile.mkdtemp(), "lite.db"))
            build(client, index_type, vectors)
            search_ms(client, vectors[:8], 2)  # warm
            for nq in args.nq:
                for cached in (False, True, False, True) if args.row_cache else (False,):  # alternating
                    Segment.row_to_dict, collection.execute_search_with_index = lites_own
                    if cached:
                        install(milvus_lite.__version__)
                        search_ms(client, vectors[:8], 1)  # the columns converted once, as in a running child
                    wall, cpu = search_ms(client, vectors[:nq], args.repeats)
                    row = {
                        "rows": n,
                        "index": index_type,
                        "nq": nq,
                        "row_cache": cached,
                        "wall_ms": round(wall, 1),
                        "cpu_ms": round(cpu, 1),
                        "cpu_ms_per_query": round(cpu / nq, 3),
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
                Segment.row_to_dict, collection.execute_search_with_index = lites_own
            client.close()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {"command": "PYTHONPATH=. python research/experiments/lite_search_cost.py", "results": results},
                fh,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
