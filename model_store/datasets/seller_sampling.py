"""Random choices of a seller photo, drawn from a numpy Generator into a frozen ``PhotoSpec``.

Placements keep a margin from the ``is_subject`` rule (long side >= 0.6, centring >= 0.85,
cut-off < 0.05) so the subject / non-subject label is learnable: ``subject`` items have a long
side of 0.68-0.95 near the centre, ``small`` 0.2-0.45, ``off_centre`` sit >= 0.18 from the
centre, ``cut`` lose 15-50 % of their box past one or two borders.
"""

from __future__ import annotations

import colorsys
import math
from typing import Literal

import numpy as np

from model_store.datasets.backgrounds import load_photo, photo_names
from model_store.datasets.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from model_store.datasets.items import item_aspect
from model_store.datasets.seller_render import LUM_WEIGHTS, duotone, luminance
from model_store.datasets.seller_spec import NO_JPEG, Degradation, ItemTexture, PhotoSpec, SellerPhotoConfig

Colour = tuple[int, int, int]
MIN_CROP_STD = 0.06  # luminance std (0..1) a life-scene crop needs
MAX_CROP_TRIES = 10


def _choice(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...]) -> str:
    cumulative = np.cumsum([weight for _, weight in pairs])
    pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return pairs[min(pick, len(pairs) - 1)][0]


def _colour(rng: np.random.Generator) -> Colour:
    """A colour that is neither white nor black (value 0.3-0.9, saturation 0.25-1)."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.25, 1.0), rng.uniform(0.3, 0.9))
    return round(r * 255), round(g * 255), round(b * 255)


def _tint(rng: np.random.Generator, bg_lum: float, free: bool) -> Colour:
    """Item colour whose luminance is >= 0.3 away from the background's, unless ``free``."""
    c = np.asarray(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.2, 1.0)))
    if not free:
        target = rng.uniform(0.05, bg_lum - 0.3) if bg_lum >= 0.5 else rng.uniform(bg_lum + 0.3, 1.0)
        lum = max(luminance(c * 255), 1e-3)
        c = c * target / lum if target < lum else 1.0 - (1.0 - c) * (1.0 - target) / max(1.0 - lum, 1e-3)
    r, g, b = np.clip(np.round(c * 255), 0, 255).astype(int)
    return int(r), int(g), int(b)


def _placement(rng: np.random.Generator, kind: str, aspect: tuple[float, float]) -> tuple[float, tuple]:
    """(long side, centre) for a placement kind; ``aspect`` is the item's (w, h) over its long side."""
    if kind == "subject":
        long = rng.uniform(0.68, 0.95)
        m = [min(0.03, max(0.0, (1.0 - long * a) / 2 - 0.01)) for a in aspect]
        return long, (0.5 + rng.uniform(-m[0], m[0]), 0.5 + rng.uniform(-m[1], m[1]))
    if kind == "cut":
        long = rng.uniform(0.5, 0.9)
        centre = [0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)]
        sides = rng.choice(4, size=int(rng.integers(1, 3)), replace=False)  # 0 left 1 right 2 top 3 bottom
        for side in sides:
            axis, ext = int(side) // 2, long * aspect[int(side) // 2]
            inside = ext * (0.5 - rng.uniform(0.15, 0.5))  # box centre to the border
            centre[axis] = inside if side % 2 == 0 else 1.0 - inside
        return long, (centre[0], centre[1])
    lo, hi, min_dist = (0.2, 0.45, 0.0) if kind == "small" else (0.4, 0.65, 0.18)
    long = rng.uniform(lo, hi)
    for _ in range(50):
        half = [long * a / 2 + 0.01 for a in aspect]
        centre = (rng.uniform(half[0], 1 - half[0]), rng.uniform(half[1], 1 - half[1]))
        if math.hypot(centre[0] - 0.5, centre[1] - 0.5) >= min_dist:
            return long, centre
        long *= 0.97
    return long, (half[0], half[1])  # top-left corner: always far enough from the centre


def sample_degradation(rng: np.random.Generator, config: SellerPhotoConfig, force: bool = False) -> Degradation:
    """Each degradation on with chance 0.35 (at least one), or none with chance 1 - degraded_prob."""
    seed = int(rng.integers(2**31))
    if not force and rng.random() >= config.degraded_prob:
        return Degradation(noise_seed=seed)
    on = rng.random(4) < 0.35
    on[int(rng.integers(4))] = True
    return Degradation(
        noise_sigma=float(rng.uniform(*config.noise_sigma_range)) if on[0] else 0.0,
        blur_radius=float(rng.uniform(*config.blur_radius_range)) if on[1] else 0.0,
        jpeg_quality=int(rng.integers(config.jpeg_quality_range[0], config.jpeg_quality_range[1] + 1))
        if on[2] else NO_JPEG,
        contrast_factor=float(rng.uniform(*config.contrast_factor_range)) if on[3] else 1.0,
        noise_seed=seed,
    )  # fmt: skip


def _life_scene(
    rng: np.random.Generator, split: Literal["train", "test"], config: SellerPhotoConfig
) -> tuple[str, tuple, tuple, bool, float, tuple[Colour, Colour] | None]:
    """(photo name, crop box, channel gains, flip, mean luminance, duotone) of a textured square crop.

    Draws for the duotone come last and only when it is enabled, so the default generator's scenes
    stay exactly what the shipped models were trained on.
    """
    names = photo_names(split, config.extra_train_photos)
    name = names[int(rng.integers(len(names)))]
    photo = load_photo(name)
    h, w = photo.shape[:2]
    for _ in range(MAX_CROP_TRIES):  # a flat crop (sky, paper) would pass for a solid background
        side = rng.uniform(*config.crop_side_range) * min(h, w)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        crop = photo[int(y0) : int(y0 + side) : 4, int(x0) : int(x0 + side) : 4].astype(np.float32)
        if float((crop @ LUM_WEIGHTS).std()) >= MIN_CROP_STD * 255:
            break
    gain = tuple(float(g) for g in rng.uniform(0.8, 1.2, 3))  # colour jitter: most train photos are grey
    mean_colour = crop.reshape(-1, 3).mean(0)
    lum = luminance(np.clip(mean_colour * np.asarray(gain), 0, 255))
    box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
    flip = bool(rng.random() < 0.5)
    ramp = None
    if split == "train" and config.duotone_prob > 0 and rng.random() < config.duotone_prob:
        dark, light = sorted((_colour(rng), _colour(rng)), key=luminance)
        ramp = (dark, light)
        lum = luminance(duotone(mean_colour, dark, light))
    return name, box, gain, flip, lum, ramp


def _item_texture(rng: np.random.Generator, split: Literal["train", "test"], config: SellerPhotoConfig) -> ItemTexture:
    """A crop of a split's photo for the item's surface; half of them as a duotone of two vivid colours."""
    names = photo_names(split, config.extra_train_photos)
    name = names[int(rng.integers(len(names)))]
    h, w = load_photo(name).shape[:2]
    side = rng.uniform(*config.crop_side_range) * min(h, w)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    ramp = None
    if rng.random() < 0.5:
        dark, light = sorted((_colour(rng), _colour(rng)), key=luminance)
        ramp = (dark, light)
    return ItemTexture(name, (float(x0), float(y0), float(x0 + side), float(y0 + side)), ramp)


def _round_item(rng: np.random.Generator) -> np.ndarray:
    """A 28x28 item image of an ellipse or a rounded square: a plate, a clock face, a round logo."""
    yy, xx = (np.mgrid[0:28, 0:28].astype(np.float32) + 0.5) / 14.0 - 1.0
    axes = [1.0, float(rng.uniform(0.75, 1.0))]
    rng.shuffle(axes)
    power = 2.0 if rng.random() < 0.6 else 4.0
    r = np.abs(xx / axes[0]) ** power + np.abs(yy / axes[1]) ** power
    return np.round(np.clip((1.0 - r) * 8.0, 0.0, 1.0) * 235.0).astype(np.uint8)


def sample_spec(
    item_index: int,
    rng: np.random.Generator,
    config: SellerPhotoConfig | None = None,
    split: Literal["train", "test"] = "train",
    item: np.ndarray | None = None,
    fine_class: int | None = None,
) -> PhotoSpec:
    """Draw a scene for one item; the item defaults to Fashion-MNIST ``split[item_index]``."""
    config = config or SellerPhotoConfig()
    if item is None or fine_class is None:
        data = load_fashion_mnist(split)
        item, fine_class = data.images[item_index], int(data.labels[item_index])
    bg = _choice(rng, config.background_probs)
    colour_a, colour_b = _colour(rng), _colour(rng)
    while bg == "gradient" and np.abs(np.subtract(colour_a, colour_b)).sum() < 150:
        colour_b = _colour(rng)
    angle = float(rng.uniform(0, 2 * math.pi))
    photo_name, photo_box, gain, flip, ramp = None, None, (1.0, 1.0, 1.0), False, None
    if bg == "life_scene":
        photo_name, photo_box, gain, flip, bg_lum, ramp = _life_scene(rng, split, config)
    else:
        flat = {"white": 1.0, "black": 0.0, "solid": luminance(colour_a)}
        bg_lum = flat.get(bg, (luminance(colour_a) + luminance(colour_b)) / 2)
    tint = _tint(rng, bg_lum, free=rng.random() < config.low_contrast_item_prob)
    placement = _choice(rng, config.placement_probs)
    long_side, centre = _placement(rng, placement, item_aspect(item))
    degradation = sample_degradation(rng, config)
    texture = None  # drawn last and only when enabled: the default generator's scenes stay as they were
    if config.textured_item_prob > 0 and rng.random() < config.textured_item_prob:
        texture = _item_texture(rng, split, config)
    if config.round_item_prob > 0 and rng.random() < config.round_item_prob:
        item, placement = _round_item(rng), "subject"  # the fine class stays: only the background is trained
        long_side = float(rng.uniform(0.8, 1.0))
        centre = (0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03))
        texture = texture or _item_texture(rng, split, config)
    return PhotoSpec(
        item=item, item_index=int(item_index), fine_class=int(fine_class),
        category=dict(config.taxonomy)[CLASS_NAMES[int(fine_class)]], size=config.size,
        background_class=bg, colour_a=colour_a, colour_b=colour_b, gradient_angle=angle,
        photo_name=photo_name, photo_box=photo_box, photo_gain=gain, photo_flip=flip, tint=tint,
        placement=placement, long_side=float(long_side), centre=(float(centre[0]), float(centre[1])),
        degradation=degradation, photo_duotone=ramp, item_texture=texture,
    )  # fmt: skip
