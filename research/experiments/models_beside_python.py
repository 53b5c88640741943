"""The models' rate alone and beside a busy Python thread: on a thread of this process vs in a child process.

``PYTHONPATH=. python research/experiments/models_beside_python.py --threads 2 --rounds 3``

Why: a worker's model thread shares the GIL with the event loop, the Milvus client and the
decode threads. An eager forward releases the GIL inside each operator and takes it back after
it, so every operator can wait behind another thread's Python for up to the switch interval.
The busy thread here is the worst case of that (it always wants the GIL); the worker's real
threads want it part of the time. ``processors.model_process`` is the child-process variant.
Rounds alternate the variants; each figure is images/s of ``run_models`` on 64 images of 128 px.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time

import numpy as np
from PIL import Image

from processors.embedding import TorchEmbedder
from processors.inference import run_models
from streams.pipeline_factory import build_quality, model_process
from streams.settings import Settings


class BusyPython:
    """A thread that runs pure Python until stopped: always wants the GIL."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        x = 0
        while not self._stop.is_set():
            for i in range(1000):
                x += i

    def __enter__(self) -> BusyPython:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", type=int, default=4, help="batches of 64 per figure")
    args = p.parse_args()

    settings = Settings(torch_threads=args.threads)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)) for _ in range(64)]
    scenes: list[str | None] = [None] * len(images)
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    quality = build_quality(settings)
    child = model_process(settings, settings.embedder_config(), quality)
    await child.start()
    run_models(embedder, quality, images, scenes)
    await child.run(images, scenes)

    async def rate(in_child: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(args.batches):
            if in_child:
                await child.run(images, scenes)
            else:
                run_models(embedder, quality, images, scenes)
        return args.batches * len(images) / (time.perf_counter() - t0)

    figures: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for name, in_child, busy in (
            ("thread_alone", False, False),
            ("thread_beside_busy_python", False, True),
            ("child_alone", True, False),
            ("child_beside_busy_python", True, True),
        )[:: 1 if r % 2 == 0 else -1]:
            if busy:
                with BusyPython():
                    value = await rate(in_child)
            else:
                value = await rate(in_child)
            figures.setdefault(name, []).append(round(value, 1))
    child.close()
    print(json.dumps({"torch_threads": args.threads, "images_per_s": figures,
                      "median": {k: statistics.median(v) for k, v in figures.items()}}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
