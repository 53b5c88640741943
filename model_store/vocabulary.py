"""The label vocabulary that serving and training share: fine classes, coarse categories, backgrounds.

Neither side's private code: the worker's vote and quality scores name these labels, and the
dataset generator and training draw them. It imports nothing, so the serving path can use the
names without loading the dataset modules (``model_store.datasets`` re-exports them).
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip
CATEGORIES: tuple[str, ...] = ("clothing", "shoes", "bags")
DEFAULT_TAXONOMY: dict[str, str] = {
    "tshirt_top": "clothing", "trouser": "clothing", "pullover": "clothing", "dress": "clothing",
    "coat": "clothing", "shirt": "clothing",
    "sandal": "shoes", "sneaker": "shoes", "ankle_boot": "shoes",
    "bag": "bags",
}  # fmt: skip
BACKGROUND_CLASSES: tuple[str, ...] = ("white", "black", "solid", "gradient", "life_scene")
PLACEMENTS: tuple[str, ...] = ("subject", "small", "off_centre", "cut")


def category_of(fine_class: int, taxonomy: dict[str, str] | None = None) -> str:
    """Coarse commodity category of a fine class index under ``taxonomy`` (default map if None)."""
    return (taxonomy or DEFAULT_TAXONOMY)[CLASS_NAMES[fine_class]]
