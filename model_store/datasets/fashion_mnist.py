"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, parsed straight from IDX gz.

Parsing the IDX files with numpy avoids torchvision's md5 check, which fails on Debian's
re-compressed files, and keeps the loader free of any network access.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

# the label names live in the shared vocabulary (serving uses them without this loader); re-exported here
from model_store.vocabulary import CATEGORIES, CLASS_NAMES, DEFAULT_TAXONOMY, category_of  # noqa: F401

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"

_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class FashionMnistError(RuntimeError):
    """The Fashion-MNIST files are missing or malformed."""


@dataclass(frozen=True)
class FashionMnistSplit:
    """One split: ``images`` uint8 [N, 28, 28] (white item on black), ``labels`` int64 [N]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _read_idx(path: Path, magic: int) -> np.ndarray:
    if not path.is_file():
        raise FashionMnistError(
            f"{path} not found: install the Debian package {DEBIAN_PACKAGE!r} "
            f"(apt-get install {DEBIAN_PACKAGE}) or pass the directory holding the IDX gz files as root"
        )
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise FashionMnistError(f"{path}: IDX magic {found:#010x}, expected {magic:#010x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise FashionMnistError(f"{path}: {data.size} bytes of data for dimensions {dims}")
    return data.reshape(dims)


@functools.lru_cache(maxsize=4)
def _load_cached(split: str, root: Path) -> FashionMnistSplit:
    image_file, label_file = _FILES[split]
    images = _read_idx(root / image_file, _IMAGES_MAGIC)
    labels = _read_idx(root / label_file, _LABELS_MAGIC).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise FashionMnistError(f"{root}: images {images.shape} do not match labels {labels.shape}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return FashionMnistSplit(images=images, labels=labels)


def load_fashion_mnist(split: Literal["train", "test"], root: Path = DEFAULT_ROOT) -> FashionMnistSplit:
    """Load a split (read-only arrays, cached per process and root)."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _load_cached(split, Path(root).resolve())


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic disjoint (train, val) index arrays, each sorted, for model selection."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)
