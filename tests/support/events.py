"""Builders of ImageSubmitted / LabelConfirmed payloads and sample images for tests."""

from __future__ import annotations

import base64
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


def good_event(
    index: int, product_id: str | None = None, event_id: str | None = None
) -> tuple[dict[str, Any], str]:
    pixels, label = sample_item(index)
    b64 = base64.b64encode(image_bytes(pixels)).decode()
    return submitted(product_id or f"p-{index}", event_id=event_id, image_b64=b64), label


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
