"""Rendered, labelled seller photos for the quality models, cached as .npy arrays.

One ``QualityData`` holds, for the same scenes: ``images`` (as sampled: about 60 % degraded),
``clean`` (the same scene with no degradation, the twin's input) and ``labels`` (numpy arrays,
one row per image, measured on ``images``; the aesthetic factors are equal for both versions).

Splits: ``train`` and ``val`` are disjoint Fashion-MNIST train items (``train_val_split``) on the
train background photos; ``test`` is Fashion-MNIST test items on the held-out photos
(``TEST_PHOTOS``). Every image is determined by (seed, item index), see ``seller_photos.spec_for``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model_store.datasets import BACKGROUND_CLASSES, SellerPhotoConfig, load_fashion_mnist, train_val_split
from model_store.datasets.backgrounds import EXTRA_TRAIN_PHOTOS
from model_store.datasets.seller_photos import render_with_labels, spec_for

Split = Literal["train", "val", "test"]
SCALAR_LABELS = (
    "coverage", "centring", "cut_off", "is_subject", "noise_sigma", "blur_radius", "jpeg_quality",
    "contrast_factor", "distortion", "composition", "contrast", "clutter", "aesthetic",
)  # fmt: skip
DEFAULT_CACHE = Path(os.path.expanduser("~/.cache/catalog-enrich/quality-data"))
#: Bound of the render cache: about two training sets (1.3 GB each) with their val and test sets.
#: The key changes with the generator config, so without a bound old renders pile up for good.
DEFAULT_CACHE_LIMIT_BYTES = 4 * 1024**3

#: Named generator settings for the train and val splits. ``colour_scenes`` adds a colour photo and
#: zoomed-in (smoother) crops to the life scenes: sellers' life scenes are colour photos, often out
#: of focus, while most train photos are grey textures. The test split always uses ``default``, so
#: every model is judged on the same held-out images. ``vivid_scenes`` also turns half the life scenes
#: into duotones; it was worse (val 0.914, test 0.953 against 0.973 / 0.973 for ``colour_scenes``:
#: smooth duotone crops look like solid colours), and is kept to reproduce that comparison.
#: ``textured_items`` is ``colour_scenes`` with 35 % of the items filled by a photo texture (half of
#: them as vivid duotones) and 15 % replaced by a textured round product that fills 0.8-1.0 of the
#: frame: real products are often multi-coloured, and a model that only saw one-colour items took
#: a big colourful product on white or black (a logo, a colour wheel) for a life scene.
#: ``textured_items_round30`` doubles the round products to 30 %; it won on validation and trains
#: the served ``quality-background@4``.
_COLOUR_SCENES = SellerPhotoConfig(extra_train_photos=EXTRA_TRAIN_PHOTOS, crop_side_range=(0.12, 0.7))
_TEXTURED_ITEMS = dataclasses.replace(_COLOUR_SCENES, textured_item_prob=0.35, round_item_prob=0.15)
GENERATORS: dict[str, SellerPhotoConfig] = {
    "default": SellerPhotoConfig(),
    "colour_scenes": _COLOUR_SCENES,
    "vivid_scenes": dataclasses.replace(_COLOUR_SCENES, duotone_prob=0.5),
    "textured_items": _TEXTURED_ITEMS,
    "textured_items_round30": dataclasses.replace(_TEXTURED_ITEMS, round_item_prob=0.3),
}


@dataclass(frozen=True)
class DataSpec:
    """What to render: the split, how many items, the seed, the size and the validation hold-out."""

    split: Split
    n: int
    seed: int = 0
    size: int = 64
    val_fraction: float = 0.1
    split_seed: int = 0
    generator: str = "default"  # a key of GENERATORS

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r}; known: {sorted(GENERATORS)}")
        if self.split == "test" and self.generator != "default":
            raise ValueError("the test split always uses the default generator")

    def config(self) -> SellerPhotoConfig:
        return dataclasses.replace(GENERATORS[self.generator], size=self.size)

    def indices(self) -> np.ndarray:
        if self.split == "test":
            return np.arange(min(self.n, len(load_fashion_mnist("test"))), dtype=np.int64)
        train, val = train_val_split(len(load_fashion_mnist("train")), self.val_fraction, self.split_seed)
        chosen = train if self.split == "train" else val
        return chosen[: self.n]

    def key(self) -> str:
        payload = json.dumps(
            {"spec": dataclasses.asdict(self), "config": repr(GENERATORS[self.generator])}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        photos = "held-out test photos" if self.split == "test" else "train photos"
        items = "Fashion-MNIST test split" if self.split == "test" else f"Fashion-MNIST train split ({self.split})"
        return {
            **dataclasses.asdict(self),
            "items": items,
            "backgrounds": photos,
            "generator_config": repr(GENERATORS[self.generator]),
        }


@dataclass(frozen=True)
class QualityData:
    images: np.ndarray  # uint8 [N, S, S, 3]
    clean: np.ndarray  # uint8 [N, S, S, 3]
    labels: dict[str, np.ndarray]  # background int64 [N], box float32 [N, 4], SCALAR_LABELS float32 [N]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, rows: np.ndarray | slice) -> QualityData:
        return QualityData(self.images[rows], self.clean[rows], {k: v[rows] for k, v in self.labels.items()})


def _render_chunk(args: tuple[DataSpec, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    spec, indices = args
    source = load_fashion_mnist("test" if spec.split == "test" else "train")
    config = spec.config()
    split = "test" if spec.split == "test" else "train"
    shape = (len(indices), spec.size, spec.size, 3)
    images, clean = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
    rows: list[dict[str, Any]] = []
    for row, index in enumerate(indices):
        photo = spec_for(source.images[index], int(source.labels[index]), int(index), spec.seed, config, split)
        images[row], lab = render_with_labels(photo)
        clean[row] = render_with_labels(photo.clean())[0] if photo.degradation.distortion > 0 else images[row]
        rows.append(lab.as_dict())
    labels = {name: np.asarray([r[name] for r in rows], np.float32) for name in SCALAR_LABELS}
    labels["box"] = np.asarray([r["box"] for r in rows], np.float32).reshape(-1, 4)
    labels["background"] = np.asarray([BACKGROUND_CLASSES.index(r["background_class"]) for r in rows], np.int64)
    labels["fine_class"] = np.asarray([r["fine_class"] for r in rows], np.int64)
    return images, clean, labels


def render_data(spec: DataSpec, workers: int = 2) -> QualityData:
    """Render every image of ``spec`` (``workers`` processes; the result does not depend on it)."""
    chunks = [c for c in np.array_split(spec.indices(), max(1, 8 * workers)) if len(c)]
    if workers <= 1:
        parts = [_render_chunk((spec, c)) for c in chunks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, [(spec, c) for c in chunks]))
    labels = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
    return QualityData(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), labels)


def load_data(
    spec: DataSpec, cache: Path | None = DEFAULT_CACHE, workers: int = 2,
    cache_limit_bytes: int = DEFAULT_CACHE_LIMIT_BYTES,
) -> QualityData:  # fmt: skip
    """Render ``spec`` or read it from ``cache`` (keyed by the spec and the generator config).

    A read marks the file as recently used; a write then evicts the least recently used renders
    until the cache fits ``cache_limit_bytes`` (the new file always stays).
    """
    path = None if cache is None else Path(cache) / f"{spec.split}-{spec.n}-{spec.key()}.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            labels = {k[2:]: z[k] for k in z.files if k.startswith("l_")}
            data = QualityData(z["images"], z["clean"], labels)
        os.utime(path)
        return data
    data = render_data(spec, workers)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=data.images, clean=data.clean, **{f"l_{k}": v for k, v in data.labels.items()})
        tmp.replace(path)
        prune_cache(path.parent, cache_limit_bytes, keep=path)
    return data


def prune_cache(cache: Path, limit_bytes: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used renders until the rest fit ``limit_bytes``; returns them.

    Only finished renders (``<split>-<n>-<key>.npz``) count; a ``.tmp.npz`` may be another
    process's write in progress and is left alone.
    """
    files = [f for f in Path(cache).glob("*-*-*.npz") if not f.name.endswith(".tmp.npz") and f != keep]
    sizes = {f: f.stat().st_size for f in files}
    total = sum(sizes.values()) + (keep.stat().st_size if keep is not None and keep.is_file() else 0)
    removed = []
    for f in sorted(files, key=lambda f: f.stat().st_mtime):
        if total <= limit_bytes:
            break
        f.unlink(missing_ok=True)
        total -= sizes[f]
        removed.append(f)
    return removed
