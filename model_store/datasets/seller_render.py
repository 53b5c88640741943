"""Render a ``PhotoSpec`` and measure its labels on the render.

Aesthetic factors are measured on the clean scene, so a clean image and its degraded twin share
composition, contrast, clutter and ``aesthetic``; only the degradation fields and ``distortion``
differ. Definitions (all in [0, 1]):

- composition = min(1, long_side / 0.85) * centring * (1 - cut_off)
- contrast = min(1, |L_item - L_surround| / 0.6), L = luminance in [0, 1]; the item is weighted by
  alpha, the surround is the background around the box (box grown by a quarter of its size)
- clutter = min(1, mean |Laplacian of background luminance| / CLUTTER_SCALE), 0 for flat colours
- aesthetic = 0.5 composition + 0.3 contrast + 0.2 (1 - clutter)
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from model_store.datasets.backgrounds import load_photo
from model_store.datasets.degradations import apply_degradation
from model_store.datasets.items import MASK_THRESHOLD, item_patch, tight_box
from model_store.datasets.seller_spec import ItemTexture, PhotoSpec, SellerPhotoLabels

CLUTTER_SCALE = 0.15  # about the median over life-scene crops at 64 px maps to 0.5
LUM_WEIGHTS = np.asarray((0.299, 0.587, 0.114), dtype=np.float32)  # RGB -> luminance (Rec. 601)


def luminance(colour: tuple[int, int, int] | np.ndarray) -> float:
    """Luminance in [0, 1] of an RGB colour given in 0..255."""
    return float(np.dot(np.asarray(colour, dtype=np.float64), LUM_WEIGHTS) / 255.0)


def subject_rule(long_side: float, centring: float, cut_off: float) -> bool:
    """Subject position: the item fills the frame (long side >= 0.6), is centred, and is whole."""
    return long_side >= 0.6 and centring >= 0.85 and cut_off < 0.05


@functools.lru_cache(maxsize=64)
def _photo_image(name: str) -> Image.Image:
    return Image.fromarray(load_photo(name))


def duotone(rgb: np.ndarray, dark: tuple[int, int, int], light: tuple[int, int, int]) -> np.ndarray:
    """Float32 [..., 3]: each pixel's luminance mapped onto the dark-to-light colour ramp.

    Linear in the pixels, so the duotone of a mean colour is the mean of the duotone.
    """
    t = (np.asarray(rgb, dtype=np.float32) @ LUM_WEIGHTS)[..., None] / 255.0
    return np.asarray(dark, np.float32) * (1.0 - t) + np.asarray(light, np.float32) * t


def render_background(spec: PhotoSpec) -> np.ndarray:
    """Float32 [S, S, 3] background, 0..255."""
    s = spec.size
    if spec.background_class in ("white", "black", "solid"):
        colour = {"white": (255, 255, 255), "black": (0, 0, 0)}.get(spec.background_class, spec.colour_a)
        return np.broadcast_to(np.asarray(colour, dtype=np.float32), (s, s, 3)).copy()
    if spec.background_class == "gradient":
        grid = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5
        proj = math.cos(spec.gradient_angle) * grid[None, :] + math.sin(spec.gradient_angle) * grid[:, None]
        t = ((proj - proj.min()) / max(float(np.ptp(proj)), 1e-6))[..., None]
        a, b = np.asarray(spec.colour_a, np.float32), np.asarray(spec.colour_b, np.float32)
        return a * (1.0 - t) + b * t
    crop = _photo_image(spec.photo_name).resize((s, s), Image.BILINEAR, box=spec.photo_box, reducing_gap=2.0)
    out = np.asarray(crop, dtype=np.float32)
    if spec.photo_duotone is not None:
        out = duotone(out, *spec.photo_duotone)
    else:
        out = out * np.asarray(spec.photo_gain, dtype=np.float32)
    return np.clip(out[:, ::-1] if spec.photo_flip else out, 0, 255)


def _clutter(lum: np.ndarray) -> float:
    lap = 4 * lum[1:-1, 1:-1] - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:]
    return min(1.0, float(np.abs(lap).mean()) / CLUTTER_SCALE)


def _textured(patch: np.ndarray, texture: ItemTexture, tint: tuple[int, int, int]) -> np.ndarray:
    """The patch recoloured by a texture crop, keeping the item's shading (patch / tint) and alpha."""
    ph, pw = patch.shape[:2]
    crop = _photo_image(texture.photo_name).resize((pw, ph), Image.BILINEAR, box=texture.box, reducing_gap=2.0)
    colours = np.asarray(crop, dtype=np.float32)
    if texture.duotone is not None:
        colours = duotone(colours, *texture.duotone)
    tint_lum = float(np.asarray(tint, dtype=np.float32) @ LUM_WEIGHTS)  # 0..255, in the patch's float32
    shade = (patch[..., :3] @ LUM_WEIGHTS)[..., None] / max(tint_lum, 1e-3)
    out = patch.copy()
    out[..., :3] = np.clip(colours * np.clip(shade, 0.0, 1.0), 0, 255)
    return out


def _compose(spec: PhotoSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(clean float image, background, alpha in frame, fraction of alpha mass cut off)."""
    s = spec.size
    bg = render_background(spec)
    patch = item_patch(spec.item, spec.tint, spec.long_side * s)
    if spec.item_texture is not None:
        patch = _textured(patch, spec.item_texture, spec.tint)
    ph, pw = patch.shape[:2]
    left, top = round(spec.centre[0] * s - pw / 2), round(spec.centre[1] * s - ph / 2)
    fx0, fy0, fx1, fy1 = max(left, 0), max(top, 0), min(left + pw, s), min(top + ph, s)
    alpha = np.zeros((s, s), dtype=np.float32)
    image = bg.copy()
    if fx1 > fx0 and fy1 > fy0:
        part = patch[fy0 - top : fy1 - top, fx0 - left : fx1 - left]
        alpha[fy0:fy1, fx0:fx1] = part[..., 3]
        a = part[..., 3:]
        image[fy0:fy1, fx0:fx1] = bg[fy0:fy1, fx0:fx1] * (1.0 - a) + part[..., :3] * a
    cut_off = 1.0 - float(alpha.sum()) / max(float(patch[..., 3].sum()), 1e-6)
    return image, bg, alpha, max(0.0, cut_off)


def _labels(spec: PhotoSpec, image: np.ndarray, bg: np.ndarray, alpha: np.ndarray, cut: float) -> SellerPhotoLabels:
    s = spec.size
    x0, y0, x1, y1 = tight_box(alpha, MASK_THRESHOLD) or tight_box(alpha, 0.0) or (0, 0, 1, 1)
    box = (x0 / s, y0 / s, x1 / s, y1 / s)
    coverage = (box[2] - box[0]) * (box[3] - box[1])
    centring = 1.0 - math.hypot((box[0] + box[2]) / 2 - 0.5, (box[1] + box[3]) / 2 - 0.5) / math.sqrt(0.5)
    long_side = max(box[2] - box[0], box[3] - box[1])
    lum_image, lum_bg = image @ LUM_WEIGHTS / 255.0, bg @ LUM_WEIGHTS / 255.0
    l_item = float((lum_image * alpha).sum() / max(float(alpha.sum()), 1e-6))
    gx, gy = max(2, (x1 - x0) // 4), max(2, (y1 - y0) // 4)
    region = (slice(max(y0 - gy, 0), y1 + gy), slice(max(x0 - gx, 0), x1 + gx))
    weight = 1.0 - alpha[region]
    weight = weight if weight.sum() >= 1.0 else np.ones_like(weight)
    l_surround = float((lum_bg[region] * weight).sum() / weight.sum())
    flat = spec.background_class in ("white", "black", "solid")
    composition = min(1.0, long_side / 0.85) * centring * (1.0 - cut)
    contrast = min(1.0, abs(l_item - l_surround) / 0.6)
    clutter = 0.0 if flat else _clutter(lum_bg)
    d = spec.degradation
    return SellerPhotoLabels(
        fine_class=spec.fine_class, category=spec.category, background_class=spec.background_class,
        box=box, coverage=coverage, centring=centring, cut_off=cut,
        is_subject=subject_rule(long_side, centring, cut), noise_sigma=d.noise_sigma,
        blur_radius=d.blur_radius, jpeg_quality=d.jpeg_quality, contrast_factor=d.contrast_factor,
        distortion=d.distortion, composition=composition, contrast=contrast, clutter=clutter,
        aesthetic=0.5 * composition + 0.3 * contrast + 0.2 * (1.0 - clutter),
    )  # fmt: skip


def render_with_labels(spec: PhotoSpec) -> tuple[np.ndarray, SellerPhotoLabels]:
    """uint8 [S, S, 3] image and its labels."""
    image, bg, alpha, cut = _compose(spec)
    clean = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return apply_degradation(clean, spec.degradation), _labels(spec, image, bg, alpha, cut)


def render(spec: PhotoSpec) -> np.ndarray:
    """uint8 [S, S, 3] image only."""
    return render_with_labels(spec)[0]
