"""Torch Datasets that render seller photos on the fly, deterministically per (seed, item index).

Randomness is keyed by the item's index in the Fashion-MNIST split (not the position in a subset),
so ``SellerPhotoDataset(..., indices=val)[j]`` equals the photo of item ``val[j]`` in the full set and
equals ``generate_batch`` with the same seed and ``indices``. Normalisation is left to the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from model_store.datasets.fashion_mnist import CLASS_NAMES, DEFAULT_ROOT, load_fashion_mnist
from model_store.datasets.seller_photos import render_with_labels, spec_for, twin_pair
from model_store.datasets.seller_spec import SellerPhotoConfig, SellerPhotoLabels

Item = tuple[torch.Tensor, int, dict[str, Any]]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 CxHxW in [0, 1]."""
    pixels = np.require(image, dtype=np.uint8, requirements=["C", "W"])  # PIL arrays are read-only
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)


def labels_dict(labels: SellerPhotoLabels, index: int) -> dict[str, Any]:
    """Collatable labels: numbers as they are, ``box`` as a float32 tensor, plus the item ``index``."""
    out = labels.as_dict()
    out["box"] = torch.tensor(labels.box, dtype=torch.float32)
    out["index"] = index
    return out


class SellerPhotoDataset(Dataset[Item]):
    """(image CHW float in [0, 1], fine label, labels dict) for items of a Fashion-MNIST split.

    ``plain=True`` gives the source item unchanged in look (white-ish item on black), bilinearly
    upscaled to ``size`` and repeated to RGB; its dict holds only fine_class, category and index.
    """

    def __init__(
        self,
        split: Literal["train", "test"],
        size: int = 64,
        seed: int = 0,
        plain: bool = False,
        indices: Sequence[int] | np.ndarray | None = None,
        config: SellerPhotoConfig | None = None,
        root: Path = DEFAULT_ROOT,
    ) -> None:
        self.split, self.size, self.seed, self.plain = split, size, seed, plain
        self.data = load_fashion_mnist(split, root)
        n = len(self.data)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        self.config = dataclasses.replace(config or SellerPhotoConfig(), size=size)
        self.taxonomy = dict(self.config.taxonomy)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def _source(self, position: int) -> tuple[int, np.ndarray, int]:
        index = int(self.indices[position])
        return index, self.data.images[index], int(self.data.labels[index])

    def __getitem__(self, position: int) -> Item:
        index, item, fine = self._source(position)
        if self.plain:
            grey = np.asarray(Image.fromarray(item).resize((self.size, self.size), Image.BILINEAR))
            meta = {"fine_class": fine, "category": self.taxonomy[CLASS_NAMES[fine]], "index": index}
            return to_tensor(np.repeat(grey[:, :, None], 3, axis=2)), fine, meta
        image, labels = render_with_labels(spec_for(item, fine, index, self.seed, self.config, self.split))
        return to_tensor(image), fine, labels_dict(labels, index)


class SellerTwinDataset(SellerPhotoDataset):
    """(clean image, degraded image, clean labels, degraded labels) of the same scene (seed 004 twin)."""

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:  # type: ignore[override]
        index, item, fine = self._source(position)
        clean_spec, noisy_spec = twin_pair(item, fine, index, self.seed, self.config, self.split)
        clean, clean_labels = render_with_labels(clean_spec)
        noisy, noisy_labels = render_with_labels(noisy_spec)
        return (
            to_tensor(clean),
            to_tensor(noisy),
            labels_dict(clean_labels, index),
            labels_dict(noisy_labels, index),
        )
