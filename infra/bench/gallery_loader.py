"""Load the stream benchmark's gallery: labelled Fashion-MNIST train items as trusted rows, straight into Milvus.

Why not ``catalog gallery load``: that command also publishes the items to the gallery topic
(for a model rollout to replay); the benchmark needs only the rows, and must not spend its
broker's time or topics on them. Run as a process of its own (``python -m``), with the
worker's environment, because one process owns a Milvus Lite file at a time. It returns once
the index covers the load and no row has been pending re-indexing for ``--settle-quiet-s``.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--limit", type=int, required=True)
    p.add_argument("--style", choices=["plain", "seller"], default="seller")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settle-quiet-s", type=float, default=30.0)
    p.add_argument("--settle-limit-s", type=float, default=300.0)
    args = p.parse_args(argv)

    from processors.embedding import TorchEmbedder
    from processors.gallery import load_gallery
    from processors.index_benchmark import SettleLimits, wait_until_indexed
    from processors.samples import fashion_mnist_samples
    from streams.pipeline_factory import build_index, build_label_store
    from streams.settings import Settings

    settings = Settings()  # the worker's environment, as the caller passes it
    embedder = TorchEmbedder.from_config(settings.one_batch_at_a_time().embedder_config())
    samples = fashion_mnist_samples("train", args.limit, embedder.image_size, args.style, args.seed)
    index = build_index(settings, embedder)
    try:
        report = load_gallery(samples, embedder, index, labels=build_label_store(settings, index))
        rows = index.count()
        # the index bench's wait: a Milvus that still compacts and re-indexes the load would slow the first searches
        settle = SettleLimits(args.settle_quiet_s, args.settle_limit_s)
        wait = wait_until_indexed(index, rows, timeout=args.settle_limit_s + 600, settle=settle)
        out = {
            "collection": index.collection,
            "rows": report.rows,
            "rows_total": rows,
            "seconds": round(report.seconds, 2),
            "index_ready_s": None if wait.ready_s is None else round(wait.ready_s, 1),
            "index_settled_s": None if wait.settled_s is None else round(wait.settled_s, 1),
            "pending_index_rows_at_start": wait.pending_rows_at_measure,
        }
    finally:
        index.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
