"""Typed, frozen descriptions of one seller photo: config, scene spec, degradation and labels.

A ``PhotoSpec`` fixes every random choice, so the same scene can be rendered clean and degraded
(the twin training of seed 004 needs both). Labels are measured on the render, see ``seller_render``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_store.vocabulary import BACKGROUND_CLASSES, DEFAULT_TAXONOMY, PLACEMENTS

NO_JPEG = 100  # jpeg_quality value meaning "not JPEG-compressed"


def _pairs(value: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    return tuple(value.items()) if isinstance(value, Mapping) else tuple(value)


@dataclass(frozen=True)
class SellerPhotoConfig:
    """Generator settings. Probabilities may be given as dicts; they are stored as tuples (hashable)."""

    size: int = 64
    background_probs: tuple[tuple[str, float], ...] = (
        ("white", 0.3), ("black", 0.15), ("solid", 0.2), ("gradient", 0.15), ("life_scene", 0.2),
    )  # fmt: skip
    placement_probs: tuple[tuple[str, float], ...] = (
        ("subject", 0.5), ("small", 0.2), ("off_centre", 0.15), ("cut", 0.15),
    )  # fmt: skip
    degraded_prob: float = 0.6  # chance that a sampled spec carries any degradation
    noise_sigma_range: tuple[float, float] = (2.0, 30.0)  # grey levels of 0..255
    blur_radius_range: tuple[float, float] = (0.4, 2.5)  # PIL GaussianBlur radius, pixels
    jpeg_quality_range: tuple[int, int] = (10, 80)
    contrast_factor_range: tuple[float, float] = (0.3, 0.85)  # 1.0 = unchanged
    low_contrast_item_prob: float = 0.1  # tint chosen without regard to the background
    taxonomy: tuple[tuple[str, str], ...] = tuple(DEFAULT_TAXONOMY.items())
    extra_train_photos: tuple[str, ...] = ()  # more life-scene photos for the train split only
    crop_side_range: tuple[float, float] = (0.25, 0.7)  # life-scene crop side, share of the photo's short side
    duotone_prob: float = 0.0  # train split: chance a life scene is recoloured as a two-colour (duotone) photo
    textured_item_prob: float = 0.0  # chance the item is filled with a photo texture (a multi-colour product)
    # chance of a textured round product (plate, clock, logo) filling the frame; for background training
    # only: the spec keeps the Fashion-MNIST item's fine class, which the picture no longer shows
    round_item_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("background_probs", "placement_probs", "taxonomy"):
            object.__setattr__(self, name, _pairs(getattr(self, name)))
        unknown = {k for k, _ in self.background_probs} - set(BACKGROUND_CLASSES)
        unknown |= {k for k, _ in self.placement_probs} - set(PLACEMENTS)
        if unknown:
            raise ValueError(f"unknown background classes or placements: {sorted(unknown)}")
        lo, hi = self.crop_side_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_side_range must satisfy 0 < lo <= hi <= 1, got {self.crop_side_range}")
        for name in ("degraded_prob", "low_contrast_item_prob", "duotone_prob", "textured_item_prob",
                     "round_item_prob"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16, got {self.size}")


@dataclass(frozen=True)
class Degradation:
    """Known-strength degradations; the default instance is a clean image."""

    noise_sigma: float = 0.0
    blur_radius: float = 0.0
    jpeg_quality: int = NO_JPEG
    contrast_factor: float = 1.0
    noise_seed: int = 0

    @property
    def distortion(self) -> float:
        """1 - prod(1 - d_i): 0 when clean, monotone non-decreasing in every strength, in [0, 1].

        d_noise = sigma/40, d_blur = radius/3.2, d_jpeg = (95 - quality)/110, d_contrast = (1 - f)/0.9,
        each clipped to [0, 1]: the top of each default range gives about 0.75, so mixes rarely saturate.
        """
        parts = (
            self.noise_sigma / 40.0,
            self.blur_radius / 3.2,
            (95.0 - self.jpeg_quality) / 110.0 if self.jpeg_quality < NO_JPEG else 0.0,
            (1.0 - self.contrast_factor) / 0.9,
        )
        return float(1.0 - np.prod([1.0 - min(1.0, max(0.0, p)) for p in parts]))


@dataclass(frozen=True)
class ItemTexture:
    """A photo crop that fills the item's silhouette (shaded by the item), optionally as a duotone."""

    photo_name: str
    box: tuple[float, float, float, float]  # crop in photo pixels (x0, y0, x1, y1)
    duotone: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None  # (dark, light) colours


@dataclass(frozen=True)
class PhotoSpec:
    """Every choice needed to render one photo. ``item`` (28x28 uint8) is excluded from eq/hash."""

    item: np.ndarray = field(repr=False, compare=False)
    item_index: int
    fine_class: int
    category: str
    size: int
    background_class: str
    colour_a: tuple[int, int, int]  # solid colour, or gradient start
    colour_b: tuple[int, int, int]  # gradient end
    gradient_angle: float
    photo_name: str | None
    photo_box: tuple[float, float, float, float] | None  # crop in photo pixels (x0, y0, x1, y1)
    photo_gain: tuple[float, float, float]  # per-channel colour jitter of the photo
    photo_flip: bool
    tint: tuple[int, int, int]
    placement: str
    long_side: float  # longer side of the item's box as a fraction of the frame
    centre: tuple[float, float]  # item box centre (x, y) in frame fractions; may lie near the border
    degradation: Degradation = Degradation()
    photo_duotone: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None  # (dark, light) colours
    item_texture: ItemTexture | None = None  # None: the item is one colour (``tint``), shaded

    def clean(self) -> PhotoSpec:
        """The same scene with no degradation."""
        return dataclasses.replace(self, degradation=Degradation())

    def with_degradation(self, degradation: Degradation | None = None, **strengths: float) -> PhotoSpec:
        """The same scene with ``degradation``, or with the current one updated by ``strengths``."""
        base = degradation if degradation is not None else self.degradation
        return dataclasses.replace(self, degradation=dataclasses.replace(base, **strengths))


@dataclass(frozen=True)
class SellerPhotoLabels:
    """True labels of a rendered photo. Geometry is measured on the item's alpha mask (> 0.5)."""

    fine_class: int
    category: str
    background_class: str
    box: tuple[float, float, float, float]  # visible item part, (x0, y0, x1, y1) in [0, 1]
    coverage: float  # box area / frame area
    centring: float  # 1 - |box centre - frame centre| / sqrt(0.5)
    cut_off: float  # fraction of the item's alpha mass outside the frame
    is_subject: bool  # see seller_render.subject_rule
    noise_sigma: float
    blur_radius: float
    jpeg_quality: int
    contrast_factor: float
    distortion: float
    composition: float
    contrast: float
    clutter: float
    aesthetic: float

    @property
    def long_side(self) -> float:
        """Longer side of the box, as a fraction of the frame."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (box as a list) for collation and JSON."""
        out = dataclasses.asdict(self)
        out["box"] = list(self.box)
        return out
