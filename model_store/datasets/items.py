"""Fashion-MNIST items as RGBA cut-outs: the source is a grey item on black, so intensity is alpha.

``alpha = clip(v / 40, 0, 1)`` keeps the anti-aliased rim soft but makes dim (dark-material) parts
of the item opaque; the item's colour is ``tint * (0.4 + 0.6 v / 255)`` so its texture survives.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import ndimage

ALPHA_FULL_AT = 40.0  # source intensity from which a pixel is fully opaque
MASK_THRESHOLD = 0.5  # alpha above which a pixel belongs to the item's box
SHADE_FLOOR = 0.4
HOLE_LEVEL = 20  # source intensity below which an enclosed pixel may be a hole
MAX_FILLED_HOLE = 12  # px at 28x28


def item_alpha(item: np.ndarray) -> np.ndarray:
    """Read-only float32 alpha in [0, 1] of a 28x28 uint8 item (cached: sampling and render share it).

    Small enclosed dark spots (<= MAX_FILLED_HOLE px) are dark pattern, not background: they are
    made opaque so a patterned coat does not show the background through it. Large enclosed holes
    (a bag's handle loop) stay transparent.
    """
    return _alpha_cached(np.ascontiguousarray(item, dtype=np.uint8).tobytes())


@functools.lru_cache(maxsize=1024)
def _alpha_cached(raw: bytes) -> np.ndarray:
    item = np.frombuffer(raw, dtype=np.uint8).reshape(28, 28)
    alpha = np.clip(item.astype(np.float32) / ALPHA_FULL_AT, 0.0, 1.0)
    regions, n_regions = ndimage.label(item <= HOLE_LEVEL)  # background-like regions
    if n_regions:
        sizes = np.bincount(regions.ravel(), minlength=n_regions + 1)
        edge = np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])
        small_hole = sizes <= MAX_FILLED_HOLE
        small_hole[0] = False
        small_hole[edge] = False  # regions touching the border are outside, not holes
        alpha[small_hole[regions]] = 1.0
    alpha.setflags(write=False)
    return alpha


def tight_box(alpha: np.ndarray, threshold: float = MASK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) pixel box, end-exclusive, of ``alpha > threshold``; None if empty."""
    mask = alpha > threshold
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def item_aspect(item: np.ndarray) -> tuple[float, float]:
    """(width, height) of the item's tight box divided by its longer side."""
    box = tight_box(item_alpha(item)) or (0, 0, 28, 28)
    w, h = box[2] - box[0], box[3] - box[1]
    return w / max(w, h), h / max(w, h)


def item_patch(item: np.ndarray, tint: tuple[int, int, int], long_side_px: float) -> np.ndarray:
    """Float32 [h, w, 4] RGBA patch (colour 0..255, alpha 0..1) of the item's box, long side scaled."""
    alpha = item_alpha(item)
    x0, y0, x1, y1 = tight_box(alpha) or (0, 0, 28, 28)
    v = item[y0:y1, x0:x1].astype(np.float32)
    shade = SHADE_FLOOR + (1.0 - SHADE_FLOOR) * v / 255.0
    rgba = np.empty((y1 - y0, x1 - x0, 4), dtype=np.float32)
    rgba[..., :3] = shade[..., None] * np.asarray(tint, dtype=np.float32)
    rgba[..., 3] = alpha[y0:y1, x0:x1] * 255.0
    scale = long_side_px / max(x1 - x0, y1 - y0)
    new_size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    # PIL premultiplies RGBA during resampling, so the colour does not bleed into transparent pixels.
    resized = Image.fromarray(np.round(rgba).astype(np.uint8), "RGBA").resize(new_size, Image.BILINEAR)
    out = np.asarray(resized, dtype=np.float32)
    out[..., 3] /= 255.0
    return out
