"""Bulk-load labelled sample sets into the gallery as trusted (``confirmed``) rows."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model_store.devices import batch_slices
from processors.embedding import TorchEmbedder
from processors.label_store import LabelStore, StoredLabel
from processors.vector_index import GalleryItem, VectorIndex

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class LabelledImages:
    """Pre-sized uint8 pixels [N, H, W, 3] with ids and categories."""

    product_ids: list[str]
    pixels: np.ndarray
    categories: list[str]


@dataclass(frozen=True)
class LoadReport:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def folder_samples(root: Path, image_size: int) -> LabelledImages:
    """A tree ``category/*.jpg``: the folder name is the trusted label."""
    ids, pixels, cats = [], [], []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        ids.append(f"{path.parent.name}/{path.stem}")
        pixels.append(np.asarray(rgb))
        cats.append(path.parent.name)
    if not ids:
        raise FileNotFoundError(f"no images under {root} (expected {root}/<category>/*.jpg)")
    return LabelledImages(ids, np.stack(pixels), cats)


def png_bytes(pixels: np.ndarray, compress_level: int = 1) -> bytes:
    """One uint8 [H, W, 3] image as PNG: lossless, so a replay embeds exactly the pixels the load embedded.

    Level 1 (of 9): the gallery is published once per load, and on 64 px items it is several
    times faster than the default for a few per cent more bytes.
    """
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def load_gallery(
    samples: LabelledImages,
    embedder: TorchEmbedder,
    index: VectorIndex,
    seller_id: str = "catalog",
    chunk: int = 512,
    progress: Callable[[int], None] | None = None,
    labels: LabelStore | None = None,
) -> LoadReport:
    """Trusted rows, and their labels in the label store first (a later upload must keep them)."""
    index.ensure_collection()
    if labels is not None:
        labels.ensure_collection()
    start = time.perf_counter()
    now_ms = int(time.time() * 1000)
    for part in batch_slices(len(samples.product_ids), chunk):
        vectors = embedder.embed_uint8(samples.pixels[part])
        ids: Sequence[str] = samples.product_ids[part]
        cats: Sequence[str] = samples.categories[part]
        if labels is not None:
            labels.put([StoredLabel(pid, cat, "confirmed", now_ms) for pid, cat in zip(ids, cats, strict=True)])
        index.upsert(
            [
                GalleryItem(pid, vec, cat, "confirmed", seller_id, now_ms)
                for pid, vec, cat in zip(ids, vectors, cats, strict=True)
            ]
        )
        if progress:
            progress(part.stop - part.start)
    index.flush()  # a bulk load ends sealed: searches then use the index, not a scan of growing rows
    return LoadReport(rows=len(samples.product_ids), seconds=time.perf_counter() - start)
