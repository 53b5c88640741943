"""The models alone, served four ways, alone and beside the kinds of work a worker does next to them.

``PYTHONPATH=. python research/experiments/models_alone.py --rounds 2 --out FILE``: ``run_models``
(student + quality, as the worker calls them) on 1,280 seller-style 64 px images in batches of 64,
through ``models_only_rate``, each way in turn (order alternating by round):

- eager, 1 lane x 2 torch threads (the defaults before inference lanes);
- eager, 2 lanes x 1 thread;
- traced, frozen graphs (``model_store.graphs``), 1 lane x 2 threads;
- graphs, 2 lanes x 1 thread (the defaults now);

each alone, beside a thread of this process busy in Python 15 ms of every 40 (the worker's event
loop, Milvus client and decode hold the GIL like that), and beside a process busy 40 ms of every
100 (the Milvus Lite child takes ~0.4 of a core). Prints JSON lines, then a summary.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from PIL import Image

from processors.embedding import TorchEmbedder
from processors.pipeline_benchmark import models_only_rate
from processors.samples import fashion_mnist_samples
from streams.pipeline_factory import build_quality
from streams.settings import Settings

WAYS = {  # name: (graphs, lanes, threads per lane)
    "eager, 1 lane x 2 threads": (False, 1, 2),
    "eager, 2 lanes x 1 thread": (False, 2, 1),
    "graphs, 1 lane x 2 threads": (True, 1, 2),
    "graphs, 2 lanes x 1 thread": (True, 2, 1),
}


def _spin(busy_ms: float, every_ms: float, stop: Callable[[], bool]) -> None:
    while not stop():
        start = time.perf_counter()
        while (time.perf_counter() - start) * 1000 < busy_ms:
            sum(i * i for i in range(200))
        time.sleep((every_ms - busy_ms) / 1000)


def _spin_until(busy_ms: float, every_ms: float, until: float) -> None:
    _spin(busy_ms, every_ms, lambda: time.time() > until)


@contextmanager
def beside(kind: str) -> Iterator[None]:
    if kind == "alone":
        yield
        return
    if kind == "python thread":
        done = threading.Event()
        worker = threading.Thread(target=_spin, args=(15, 40, done.is_set), daemon=True)
        worker.start()
        try:
            yield
        finally:
            done.set()
            worker.join()
        return
    other = mp.Process(target=_spin_until, args=(40, 100, time.time() + 300))
    other.start()
    time.sleep(0.2)
    try:
        yield
    finally:
        other.terminate()
        other.join()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--images", type=int, default=1280)
    p.add_argument("--out")
    args = p.parse_args()
    samples = fashion_mnist_samples("test", args.images, 64, "seller", seed=7)
    images = [Image.fromarray(px) for px in samples.pixels]
    served = {}
    for graphs in (False, True):
        settings = Settings(cpu_graphs=graphs, inference_lanes=1, torch_threads=1)
        served[graphs] = (TorchEmbedder.from_config(settings.embedder_config()), build_quality(settings))
    for graphs, lanes, threads in WAYS.values():  # warm-up: first calls pay one-time costs
        torch.set_num_threads(threads)
        models_only_rate(*served[graphs], images[:256], 64, lanes)
    runs: dict[str, dict[str, list[float]]] = {}
    for r in range(args.rounds):
        for kind in ("alone", "python thread", "process"):
            order = list(WAYS.items()) if r % 2 == 0 else list(reversed(WAYS.items()))
            for name, (graphs, lanes, threads) in order:
                torch.set_num_threads(threads)
                with beside(kind):
                    rate = models_only_rate(*served[graphs], images, 64, lanes)
                runs.setdefault(name, {}).setdefault(kind, []).append(round(rate, 1))
                print(json.dumps({"round": r, "way": name, "beside": kind, "images_per_s": round(rate, 1)}), flush=True)
    summary = {
        "command": "PYTHONPATH=. python research/experiments/models_alone.py",
        "beside": {
            "python thread": "a thread of the same process busy in Python 15 ms of every 40",
            "process": "another process busy 40 ms of every 100",
        },
        "images_per_s": runs,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
