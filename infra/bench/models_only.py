"""The models alone, in a process of their own, with the worker's settings: the stream benchmark's yardstick.

Why a process and not the benchmark's own: the worker runs in a session of its own, and where
the kernel groups CPU time by session (autogroup, on by default on desktop and many server
kernels), a measurement inside the benchmark's busier session got less CPU than the worker and
read several times too low. Started the same way as the worker, with its environment (device,
torch threads), it is measured on equal terms.

Reads the uploads' JPEGs (a JSON list of base64 strings), decodes them as the worker's intake
does (same shrink on load), warms up, times ``run_models`` over them in batches on as many
threads at once as the worker has inference lanes, prints JSON: the rate, and the CPU the process
spent per image and the cores it kept busy (what the stream's CPU per event is set against).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images-file", required=True, help="JSON list of base64 JPEGs")
    p.add_argument("--count", type=int, required=True, help="images to time (the file's first ones)")
    p.add_argument("--batch", type=int, required=True)
    args = p.parse_args(argv)

    import torch

    from processors.embedding import TorchEmbedder
    from processors.intake import decode_image
    from processors.pipeline_benchmark import models_only_rate
    from streams.pipeline_factory import build_quality, served_input_size
    from streams.settings import Settings

    settings = Settings()  # the worker's environment, as the caller passes it
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    quality = build_quality(settings)
    intake = settings.intake_config(shrink_to=served_input_size(embedder, quality))
    payloads = json.loads(Path(args.images_file).read_text())[: args.count]
    images = [decode_image(base64.b64decode(b), intake).image for b in payloads]
    lanes = settings.lanes()
    models_only_rate(embedder, quality, images[: 2 * lanes * args.batch], args.batch, lanes)  # one-time costs first
    cpu_start = time.process_time()  # every thread of this process
    rate = models_only_rate(embedder, quality, images, args.batch, lanes)
    cpu_s = time.process_time() - cpu_start
    wall_s = len(images) / rate
    print(json.dumps({"images_per_s": round(rate, 1), "images": len(images), "batch": args.batch,
                      "cpu_ms_per_image": round(1000.0 * cpu_s / len(images), 3), "cores": round(cpu_s / wall_s, 2),
                      "torch_threads": torch.get_num_threads(), "inference_lanes": lanes,
                      "device": settings.device}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
