"""The models' CPU per image against the number of images in one forward pass, alternating, one sitting.

``PYTHONPATH=. python research/experiments/forward_batch_size.py --rounds 5 --sizes 16 32 64 128 256``:
``run_models`` (student + quality, as the worker serves them: frozen graphs, the worker's lanes and
threads) on 1,024 generated seller uploads decoded as intake does, through ``models_only_rate`` with
each forward size in turn (order alternating by round). Prints one JSON line per measure, then the
median rate per size and the paired ratio against the first size (median over rounds of the
within-round ratio): on this noisy machine only that ratio is worth quoting.

Why: a stream batch of 256 amortises what every batch pays once (a Milvus search, a Kafka request)
over four times the events, but one forward pass over 256 images may cost more per image than
four over 64 if its activations no longer fit the CPU's caches.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
from pathlib import Path

from processors.embedding import TorchEmbedder
from processors.intake import decode_image
from processors.pipeline_benchmark import models_only_rate
from streams.pipeline_factory import build_quality, served_input_size
from streams.settings import Settings


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--out", default="")
    args = p.parse_args()

    from infra.bench.run_setup import upload_images
    from infra.bench.stream import StreamBenchConfig

    settings = Settings(forward_batch_max=max(args.sizes))  # each size runs as one forward, not in pieces
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    quality = build_quality(settings)
    intake = settings.intake_config(shrink_to=served_input_size(embedder, quality))
    payloads = upload_images(StreamBenchConfig(events=args.images, image_pool=args.images), settings)
    images = [decode_image(base64.b64decode(b), intake).image for b in payloads]
    lanes = settings.lanes()
    for size in args.sizes:  # one-time costs (graph warm-up per shape) before any timing
        models_only_rate(embedder, quality, images[: 2 * lanes * size], size, lanes)
    runs = []
    for r in range(args.rounds):
        order = args.sizes if r % 2 == 0 else list(reversed(args.sizes))
        for size in order:
            rate = models_only_rate(embedder, quality, images, size, lanes)
            runs.append({"round": r, "forward_size": size, "images_per_s": round(rate, 1)})
            print(json.dumps(runs[-1]), flush=True)
    first = args.sizes[0]
    by_round = {(x["round"], x["forward_size"]): x["images_per_s"] for x in runs}
    summary = {
        "median_images_per_s": {s: statistics.median(x["images_per_s"] for x in runs if x["forward_size"] == s)
                                for s in args.sizes},
        "paired_vs_first": {s: round(statistics.median(by_round[(r, s)] / by_round[(r, first)]
                                                       for r in range(args.rounds)), 3) for s in args.sizes},
        "lanes": lanes, "images": len(images),
        "command": "PYTHONPATH=. python research/experiments/forward_batch_size.py "
                   f"--rounds {args.rounds} --sizes {' '.join(map(str, args.sizes))}",
    }  # fmt: skip
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
