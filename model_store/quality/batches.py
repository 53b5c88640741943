"""Training batches drawn from a rendered ``QualityData``: a pure function of the step number.

Augmentation is a horizontal flip (boxes mirrored); every label of the generator is invariant to it.
Pixels are fed through the same ``PreprocessSpec`` the manifest records, so training and serving
normalise identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model_store.preprocess import PreprocessSpec
from model_store.quality.data import QualityData


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor  # normalised NCHW, channels_last
    clean: torch.Tensor | None  # the same scenes undegraded (twin training only)
    labels: dict[str, torch.Tensor]  # float32 / int64 tensors, boxes flipped with the images


def flip_boxes(box: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Mirror (x0, y0, x1, y1) boxes of the rows where ``flip`` is set."""
    out = box.copy()
    out[flip, 0], out[flip, 2] = 1.0 - box[flip, 2], 1.0 - box[flip, 0]
    return out


class BatchSampler:
    """``sampler(step)`` -> the step's ``Batch``; rows drawn with replacement from (seed, step)."""

    def __init__(
        self, data: QualityData, batch_size: int, preprocess: PreprocessSpec, seed: int = 0,
        with_clean: bool = False, flip: bool = True,
    ) -> None:  # fmt: skip
        self.data, self.batch_size, self.preprocess = data, batch_size, preprocess
        self.seed, self.with_clean, self.flip = seed, with_clean, flip

    def __call__(self, step: int) -> Batch:
        rng = np.random.default_rng((self.seed, step))
        rows = np.sort(rng.integers(0, len(self.data), self.batch_size))
        flip = rng.random(self.batch_size) < 0.5 if self.flip else np.zeros(self.batch_size, bool)
        return make_batch(self.data, rows, self.preprocess, flip, self.with_clean)


def make_batch(
    data: QualityData, rows: np.ndarray, preprocess: PreprocessSpec, flip: np.ndarray | None = None,
    with_clean: bool = False,
) -> Batch:  # fmt: skip
    flip = np.zeros(len(rows), bool) if flip is None else flip

    def pixels(source: np.ndarray) -> torch.Tensor:
        chosen = source[rows]
        chosen[flip] = chosen[flip, :, ::-1]
        return preprocess.normalise_uint8(chosen)

    labels = {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in data.labels.items() if k != "box"}
    labels["box"] = torch.from_numpy(flip_boxes(data.labels["box"][rows], flip))
    return Batch(pixels(data.images), pixels(data.clean) if with_clean else None, labels)


def eval_batches(data: QualityData, preprocess: PreprocessSpec, batch_size: int = 256, with_clean: bool = False):
    """Unflipped batches covering ``data`` in order."""
    for start in range(0, len(data), batch_size):
        rows = np.arange(start, min(start + batch_size, len(data)))
        yield make_batch(data, rows, preprocess, with_clean=with_clean)
