"""Builders of ImageSubmitted / LabelConfirmed payloads and sample images for tests."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from model_store.datasets.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from processors.samples import plain_pixels


def image_bytes(pixels: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def sample_item(index: int, size: int = 64) -> tuple[np.ndarray, str]:
    data = load_fashion_mnist("test")
    return plain_pixels(data.images[index : index + 1], size)[0], CLASS_NAMES[int(data.labels[index])]


def submitted(product_id: str, *, event_id: str | None = None, **image: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id or str(uuid.uuid4()),
        "product_id": product_id,
        "seller_id": "seller-1",
        "submitted_at": datetime.now(UTC).isoformat(),
        **image,
    }


def good_event(index: int, product_id: str | None = None, event_id: str | None = None) -> tuple[dict[str, Any], str]:
    pixels, label = sample_item(index)
    b64 = base64.b64encode(image_bytes(pixels)).decode()
    return submitted(product_id or f"p-{index}", event_id=event_id, image_b64=b64), label


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def seller_scene(index: int, **changes: Any) -> np.ndarray:
    """A generated seller photo of test item ``index`` with some of its spec fields overridden."""
    from model_store.datasets.seller_photos import render, spec_for
    from model_store.datasets.seller_spec import SellerPhotoConfig

    data = load_fashion_mnist("test")
    spec = spec_for(data.images[index], int(data.labels[index]), index, 0, SellerPhotoConfig(), "test")
    return render(dataclasses.replace(spec, **changes))


def good_and_bad_photo(index: int) -> tuple[np.ndarray, np.ndarray]:
    """The same item white-background, centred and clean; and small in a corner of a noisy life scene."""
    from model_store.datasets.seller_spec import Degradation

    good = seller_scene(index, background_class="white", placement="subject", long_side=0.85,
                        centre=(0.5, 0.5), degradation=Degradation())  # fmt: skip
    heavy = Degradation(noise_sigma=28.0, jpeg_quality=15, noise_seed=index)
    bad = seller_scene(index, background_class="life_scene", photo_name="skimage_astronaut",
                       photo_box=(0.0, 0.0, 300.0, 300.0), placement="small", long_side=0.25,
                       centre=(0.15, 0.15), degradation=heavy)  # fmt: skip
    return good, bad
