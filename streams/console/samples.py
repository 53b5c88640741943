"""Pictures of Fashion-MNIST items: test items to search with, and the gallery rows ``catalog gallery load`` wrote.

Why here: the gallery stores vectors and ids, not pixels. A row whose id is ``fmnist-<split>-<index>``
(the id ``processors.samples`` gives) can be drawn again from the dataset, so the Search page shows
the neighbours themselves instead of bare ids; any other id is shown as text.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from model_store.vocabulary import CLASS_NAMES, DEFAULT_TAXONOMY
from processors.samples import plain_pixels

Split = Literal["train", "test"]
Style = Literal["plain", "seller"]
STYLES: tuple[str, ...] = ("plain", "seller")
_SAMPLE_ID = re.compile(r"^fmnist-(train|test)-([0-9]{1,6})$")


class UnknownItem(LookupError):
    """No such item in the split."""


@dataclass(frozen=True)
class Item:
    split: Split
    index: int
    fine: str
    category: str


def item(split: Split, index: int) -> Item:
    from model_store.datasets.fashion_mnist import load_fashion_mnist  # on a request, not at import

    data = load_fashion_mnist(split)
    if not 0 <= index < len(data.labels):
        raise UnknownItem(f"the {split} split has items 0 to {len(data.labels) - 1}, not {index}")
    fine = CLASS_NAMES[int(data.labels[index])]
    return Item(split, index, fine, DEFAULT_TAXONOMY[fine])


def sample_of(product_id: str) -> tuple[Split, int] | None:
    """(split, index) of a gallery id that names a Fashion-MNIST item; None for any other id."""
    match = _SAMPLE_ID.match(product_id)
    return (match.group(1), int(match.group(2))) if match else None  # type: ignore[return-value]


def item_pixels(split: Split, index: int, size: int, style: Style = "plain", seed: int = 0) -> np.ndarray:
    """uint8 [size, size, 3]: the catalog shot (light item on black) or a generated seller photo of it."""
    from model_store.datasets.fashion_mnist import load_fashion_mnist

    item(split, index)  # range check with a clear message
    data = load_fashion_mnist(split)
    items, labels = data.images[index : index + 1], data.labels[index : index + 1]
    if style == "plain":
        return plain_pixels(items, size)[0]
    from model_store.datasets.seller_photos import SellerPhotoConfig, generate_batch

    photos, _ = generate_batch(items, labels, seed=seed, config=SellerPhotoConfig(size=size), split=split,
                               indices=[index])  # fmt: skip
    return photos[0]


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
