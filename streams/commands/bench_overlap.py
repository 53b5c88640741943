"""``catalog bench overlap``: pipeline images/s at 1, 2, 3 batches in flight, in one run (no Kafka).

The timing lives in ``processors.overlap_benchmark``; this module builds the pipeline from the
settings (``CATALOG_TORCH_THREADS`` and friends apply) and prints or saves the JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from streams.settings import Settings


def parse_in_flights(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,3, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every in-flight value must be >= 1, got {text!r}")
    return values


def add_parser(bench: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = bench.add_parser("overlap", help="pipeline images/s with 1, 2, 3 batches in flight (no Kafka), one run")
    p.add_argument("--in-flight", type=parse_in_flights, default=[1, 2, 3], help="comma-separated, e.g. 1,2,3")
    p.add_argument(
        "--images", type=int, default=None, help="images per run (default: 8 batches of CATALOG_BATCH_MAX_SIZE)"
    )
    p.add_argument("--rounds", type=int, default=3, help="runs per in-flight value, alternating order")
    p.add_argument("--fresh-gallery", action="store_true", help="use an empty temporary Milvus Lite DB")
    p.add_argument("--out", help="also save the JSON report here")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from processors.overlap_benchmark import run_overlap_benchmark
    from streams.pipeline_factory import build_pipeline

    if args.images is None:
        args.images = 8 * settings.batch_max_size
    if args.images < settings.batch_max_size or args.rounds < 1:
        raise SystemExit("--images must be at least one batch (CATALOG_BATCH_MAX_SIZE) and --rounds >= 1")
    gallery = "fresh (an empty Lite DB)" if args.fresh_gallery else settings.milvus_uri
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
        if args.fresh_gallery:
            settings = settings.model_copy(update={"milvus_uri": f"{tmp}/bench.db"})
        pipeline = build_pipeline(settings)
        try:
            report = run_overlap_benchmark(pipeline, args.in_flight, args.images, settings.batch_max_size, args.rounds)
        finally:
            asyncio.run(pipeline.aclose())
    text = json.dumps({**report.as_dict(), "torch_threads": settings.torch_threads, "gallery": gallery}, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0
