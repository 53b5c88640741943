"""Images/s of the three quality models together against the Lite0 embedder alone, in one run.

Both start from the same uint8 NHWC batch at the same input size and include normalisation.
Rounds alternate between the two so a load change on the shared machine hits both alike; the
median round is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from model_store.embedding_models import load_embedding_model
from model_store.quality.scorer import QualityModels


def _rate(fn: Callable[[], object], images: int) -> float:
    t = time.perf_counter()
    fn()
    return images / (time.perf_counter() - t)


def measure_speed(
    models: QualityModels, batch: np.ndarray, rounds: int = 7, embedder_ref: str = "lite0-imagenet@1"
) -> dict[str, float]:
    embedder = load_embedding_model(embedder_ref, image_size=models.input_size)

    def embed() -> torch.Tensor:
        with torch.inference_mode():
            return embedder.module(embedder.preprocess.normalise_uint8(batch))

    def quality() -> object:
        return models.infer(batch)

    for fn in (embed, quality):  # warm-up
        fn()
    q_rates, e_rates = [], []
    for _ in range(rounds):
        q_rates.append(_rate(quality, len(batch)))
        e_rates.append(_rate(embed, len(batch)))
    q, e = statistics.median(q_rates), statistics.median(e_rates)
    return {
        "batch": len(batch), "threads": torch.get_num_threads(), "input_size": models.input_size,
        "quality_three_models_images_per_s": round(q, 1), "lite0_embedder_images_per_s": round(e, 1),
        "quality_cost_relative_to_embedder": round(e / q, 3),
    }  # fmt: skip
