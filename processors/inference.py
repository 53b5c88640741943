"""Everything the models do for one batch, in one call on the inference executor.

The decoded images are resized once per input size and shared: when the embedder and
the quality models take the same size, they read the very same uint8 batch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from model_store.quality.results import QualityResult
from processors.embedding import TorchEmbedder


class QualityScorer(Protocol):
    @property
    def input_size(self) -> int: ...

    @property
    def refs(self) -> Mapping[str, str]: ...  # role -> registry ref

    def score_batch(
        self, images: np.ndarray | Sequence[Image.Image], scenes: Sequence[str | None] | None = None
    ) -> list[QualityResult]: ...


@dataclass(frozen=True)
class BatchInference:
    vectors: np.ndarray
    quality: list[QualityResult] | None
    embed_ms: float
    quality_ms: float | None


def run_models(
    embedder: TorchEmbedder,
    quality: QualityScorer | None,
    images: Sequence[Image.Image],
    scenes: Sequence[str | None],
) -> BatchInference:
    """Blocking: call it on the inference executor, never on the event loop."""
    t0 = time.perf_counter()
    pixels = embedder.to_uint8(images)
    vectors = embedder.embed_uint8(pixels)
    embed_ms = (time.perf_counter() - t0) * 1000.0
    if quality is None:
        return BatchInference(vectors, None, round(embed_ms, 3), None)
    t0 = time.perf_counter()
    shared = pixels if quality.input_size == embedder.image_size else images
    scores = quality.score_batch(shared, scenes)
    return BatchInference(vectors, scores, round(embed_ms, 3), round((time.perf_counter() - t0) * 1000.0, 3))
