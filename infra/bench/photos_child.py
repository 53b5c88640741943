"""One batch of phone photos through the worker's pipeline in a fresh process; prints its figures as JSON.

Run by ``infra.bench.photos`` once per mode, each in a process of its own, because a process's
peak RSS (``VmHWM``) only ever grows. It imports only ``streams``/``processors`` APIs that older
checkouts have too (``--mode as-built`` with ``PYTHONPATH`` at another checkout measures its code).

Modes: ``shrink`` is the pipeline as built (shrink on load, byte budget); ``full`` is the same
pipeline with an intake that decodes in full and has no byte budget (as before shrink on load);
``as-built`` takes the pipeline exactly as the checkout builds it. ``floor`` is no pipeline: libjpeg's
own decode at the scale intake picks (``open_image`` then ``load``), nothing else, first one photo
after another, then on as many threads as the machine has cores: the fastest any intake built on
Pillow's decoder can be here, since even a 1/8-scale decode must entropy-decode the whole file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _measure(args: argparse.Namespace) -> dict:
    from processors.requests import ImageRequest
    from streams.pipeline_factory import build_pipeline
    from streams.settings import Settings

    photos = sorted(Path(args.dir).glob("*.jpg"))[: args.count]
    settings = Settings(
        milvus_uri=str(Path(args.workdir) / "milvus.db"),
        allow_file_urls=True,
        file_url_root=Path(args.dir),
        torch_threads=args.threads,
    )
    pipeline = build_pipeline(settings)
    if args.mode == "full":
        from processors.intake import ImageIntake

        full = dataclasses.replace(pipeline.intake.config, shrink_to=None, max_decoding_bytes=1 << 62)
        pipeline.intake = ImageIntake(full)
    await pipeline.start()
    warm = [ImageRequest(event_id=f"warm-{i}", product_id=f"warm-{i}", seller_id="bench",
                         image_url=Path(args.warm).resolve().as_uri()) for i in range(2)]  # fmt: skip
    await pipeline.process_batch(warm)  # models' first forward, Milvus collection: not part of the figure
    rss_before = _status_kib("VmRSS") * 1024
    requests = [
        ImageRequest(event_id=f"photo-{i}", product_id=f"photo-{i}", seller_id="bench", image_url=p.resolve().as_uri())
        for i, p in enumerate(photos)
    ]
    t0 = time.perf_counter()
    outcomes = await pipeline.process_batch(requests)
    wall = time.perf_counter() - t0
    peak = _status_kib("VmHWM") * 1024
    await pipeline.aclose()
    enriched = [o for o in outcomes if hasattr(o, "timings_ms")]
    timings = enriched[0].timings_ms if enriched else {}
    return {
        "mode": args.mode,
        "photos": len(photos),
        "enriched": len(enriched),
        "intake_ms": timings.get("intake"),
        "batch_ms": timings.get("batch", round(wall * 1000, 1)),
        "timings_ms": timings,
        "rss_before_batch_mib": round(rss_before / 2**20, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "peak_rss_bytes": peak,
    }


def _floor(args: argparse.Namespace) -> dict:
    import os
    from concurrent.futures import ThreadPoolExecutor

    from processors.intake.decode import open_image
    from streams.pipeline_factory import build_pipeline
    from streams.settings import Settings

    settings = Settings(milvus_uri=str(Path(args.workdir) / "milvus.db"), torch_threads=args.threads)
    pipeline = build_pipeline(settings)  # only for its intake's config: the very one the worker decodes with
    config = pipeline.intake.config
    asyncio.run(pipeline.aclose())
    photos = [p.read_bytes() for p in sorted(Path(args.dir).glob("*.jpg"))[: args.count]]

    def decode(data: bytes) -> tuple[int, int]:
        opened = open_image(data, config)
        opened.image.load()
        return opened.image.size

    decode(photos[0])
    t0 = time.perf_counter()
    sizes = [decode(d) for d in photos]
    serial = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    with ThreadPoolExecutor(cores) as pool:
        t0 = time.perf_counter()
        list(pool.map(decode, photos))
        threaded = time.perf_counter() - t0
    return {
        "mode": "floor",
        "photos": len(photos),
        "decoded_size": list(sizes[0]),
        "serial_ms_per_photo": round(1000 * serial / len(photos), 1),
        "threads": cores,
        "batch_ms_on_all_cores": round(1000 * threaded, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mode", choices=["full", "shrink", "as-built", "floor"], required=True)
    p.add_argument("--dir", required=True, help="folder of the photos (*.jpg)")
    p.add_argument("--warm", required=True, help="a small image for the warm-up batch")
    p.add_argument("--count", type=int, default=33)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workdir", required=True)
    args = p.parse_args()
    print(json.dumps(_floor(args) if args.mode == "floor" else asyncio.run(_measure(args))))


if __name__ == "__main__":
    main()
