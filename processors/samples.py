"""Labelled sample sets built from Fashion-MNIST: plain items or generated seller photos.

The dataset loader and the seller-photo generator are imported when a sample set is built, not
with this module: the console imports ``plain_pixels`` and stays off the dataset modules.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from model_store.vocabulary import CLASS_NAMES
from processors.gallery import LabelledImages

Style = Literal["plain", "seller"]


def plain_pixels(items: np.ndarray, image_size: int) -> np.ndarray:
    """28x28 grey items -> RGB at the model size, as the catalog shot them (light item on black)."""
    out = np.empty((len(items), image_size, image_size, 3), dtype=np.uint8)
    for i, item in enumerate(items):
        big = Image.fromarray(item).resize((image_size, image_size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(big)[:, :, None]
    return out


def seller_pixels(
    items: np.ndarray, labels: np.ndarray, image_size: int, seed: int, split: Literal["train", "test"]
) -> np.ndarray:
    from model_store.datasets.seller_photos import SellerPhotoConfig, generate_batch

    pixels, _ = generate_batch(items, labels, seed=seed, config=SellerPhotoConfig(size=image_size), split=split)
    return pixels


def pick_indices(n_total: int, limit: int | None, seed: int) -> np.ndarray:
    """A class-agnostic random subset, the same for the same seed."""
    if limit is None or limit >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=limit, replace=False))


def fashion_mnist_samples(
    split: Literal["train", "test"], limit: int | None, image_size: int, style: Style = "plain", seed: int = 0
) -> LabelledImages:
    from model_store.datasets.fashion_mnist import load_fashion_mnist

    data = load_fashion_mnist(split)
    idx = pick_indices(len(data.labels), limit, seed)
    items, labels = data.images[idx], data.labels[idx]
    if style == "plain":
        pixels = plain_pixels(items, image_size)
    else:
        pixels = seller_pixels(items, labels, image_size, seed, split)
    return LabelledImages(
        product_ids=[f"fmnist-{split}-{i}" for i in idx],
        pixels=pixels,
        categories=[CLASS_NAMES[int(c)] for c in labels],
    )
