"""Images for training and benchmarking: plain catalog items and seller photos, deterministic per key.

Pixels go through exactly the serving path: uint8 RGB -> ``PreprocessSpec.normalise_uint8``. Plain
items are resized with ``PreprocessSpec.images_to_uint8`` (the same call serving makes on a
decoded 28x28 upload), seller photos come from the seller-photo generator at the model's size.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch
from PIL import Image

from model_store.datasets.fashion_mnist import load_fashion_mnist
from model_store.datasets.seller_photos import render, spec_for
from model_store.datasets.seller_spec import SellerPhotoConfig
from model_store.preprocess import PreprocessSpec

Split = Literal["train", "test"]
Style = Literal["plain", "seller"]


class ImageSource:
    """uint8 [N, S, S, 3] images of the items of one Fashion-MNIST split."""

    def __init__(self, split: Split, preprocess: PreprocessSpec, config: SellerPhotoConfig | None = None):
        self.split, self.preprocess = split, preprocess
        self.data = load_fashion_mnist(split)
        self.config = dataclasses.replace(config or SellerPhotoConfig(), size=preprocess.image_size)

    def labels(self, indices: np.ndarray) -> np.ndarray:
        return self.data.labels[np.asarray(indices, dtype=np.int64)]

    def plain(self, indices: np.ndarray, flips: np.ndarray | None = None) -> np.ndarray:
        items = [Image.fromarray(self.data.images[int(i)]) for i in indices]
        if flips is not None:
            items = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if f else im for im, f in zip(items, flips)]  # noqa: B905
        return self.preprocess.images_to_uint8(items)

    def seller(self, indices: np.ndarray, seed: int) -> np.ndarray:
        size = self.preprocess.image_size
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for row, i in enumerate(indices):
            i = int(i)
            out[row] = render(spec_for(self.data.images[i], int(self.data.labels[i]), i, seed, self.config, self.split))
        return out

    def style(self, style: Style, indices: np.ndarray, seed: int) -> np.ndarray:
        return self.plain(indices) if style == "plain" else self.seller(indices, seed)

    def mixed(self, indices: np.ndarray, plain_mask: np.ndarray, seed: int, flips: np.ndarray) -> np.ndarray:
        size = self.preprocess.image_size
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        if plain_mask.any():
            out[plain_mask] = self.plain(indices[plain_mask], flips[plain_mask])
        if (~plain_mask).any():
            out[~plain_mask] = self.seller(indices[~plain_mask], seed)
        return out

    def tensor(self, images: np.ndarray) -> torch.Tensor:
        return self.preprocess.normalise_uint8(images)


class MixedBatches:
    """``batch(step) -> (x, fine labels)``: a pure function of (seed, step), for the trainer.

    Items are drawn with replacement from ``pool`` (optionally weighted); each is a plain item with
    probability ``plain_fraction`` (mirrored half of the time) or a seller photo with a fresh
    rendering seed per step, so every epoch shows new backgrounds, placements and degradations.
    """

    def __init__(
        self,
        source: ImageSource,
        pool: np.ndarray,
        batch_size: int,
        seed: int,
        plain_fraction: float = 0.5,
        weights: np.ndarray | None = None,
    ) -> None:
        self.source, self.pool, self.batch_size, self.seed = source, np.asarray(pool), batch_size, seed
        self.plain_fraction = plain_fraction
        self.p = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, step, 7))
        idx = rng.choice(self.pool, size=self.batch_size, replace=True, p=self.p)
        plain = rng.random(self.batch_size) < self.plain_fraction
        flips = rng.random(self.batch_size) < 0.5
        render_seed = int(rng.integers(1 << 30))
        images = self.source.mixed(idx, plain, render_seed, flips)
        return self.source.tensor(images), torch.from_numpy(self.source.labels(idx).astype(np.int64))


def eval_images(source: ImageSource, indices: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed validation set: the items of ``indices`` once plain and once as seller photos."""
    images = np.concatenate([source.plain(indices), source.seller(indices, seed)])
    labels = np.concatenate([source.labels(indices)] * 2).astype(np.int64)
    return source.tensor(images), torch.from_numpy(labels)
