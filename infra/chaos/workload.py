"""Event values the scenarios send: good uploads, confirmed labels and a hostile-input mix.

Why a pool of pre-encoded images: thousands of events must not cost the 2-core runner the
CPU the workers need, so a few dozen real Fashion-MNIST JPEGs are encoded once and reused
under distinct product ids.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from model_store.datasets.fashion_mnist import CLASS_NAMES, load_fashion_mnist

POOL = 48


@dataclass(frozen=True)
class Msg:
    """One record to send; ``partition`` None lets the key choose."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    kind: str = "good"  # good | label | the hostile kind


def _jpeg(pixels: np.ndarray, fmt: str = "JPEG", **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **save)
    return buf.getvalue()


@functools.cache
def _pixels() -> tuple[np.ndarray, ...]:
    """The first ``POOL`` test items as 64x64 RGB (light item on black, as the gallery)."""
    data = load_fashion_mnist("test")
    out = []
    for item in data.images[:POOL]:
        big = np.asarray(Image.fromarray(item).resize((64, 64), Image.Resampling.BILINEAR))
        out.append(np.repeat(big[:, :, None], 3, axis=2))
    return tuple(out)


@functools.cache
def image_pool() -> tuple[str, ...]:
    """Base64 JPEGs of the pool."""
    return tuple(base64.b64encode(_jpeg(p)).decode() for p in _pixels())


def submitted(product_id: str, **image: object) -> dict[str, object]:
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "product_id": product_id,
        "seller_id": "chaos-seller",
        "submitted_at": datetime.now(UTC).isoformat(),
        **image,
    }


def good(topic: str, product_id: str, index: int, partition: int | None = None) -> Msg:
    pool = image_pool()
    value = json.dumps(submitted(product_id, image_b64=pool[index % len(pool)])).encode()
    return Msg(topic, product_id.encode(), value, partition)


def label(topic: str, product_id: str, category: str) -> Msg:
    value = {
        "schema_version": 1,
        "product_id": product_id,
        "category": category,
        "source": "moderation",
        "event_id": str(uuid.uuid4()),
        "confirmed_at": datetime.now(UTC).isoformat(),
    }
    return Msg(topic, product_id.encode(), json.dumps(value).encode(), kind="label")


def random_category(rng: random.Random) -> str:
    return rng.choice(CLASS_NAMES)


def _mpo() -> bytes:
    """A two-frame MPO, as phone cameras write their JPEGs."""
    frames = [Image.fromarray(p) for p in _pixels()[:2]]
    buf = io.BytesIO()
    frames[0].save(buf, format="MPO", save_all=True, append_images=frames[1:])
    return buf.getvalue()


# What issue 18 says each hostile kind must become ("dlq:*": a dead letter of any documented code).
# Reported beside the targets, not one of them: the targets are about loss, rows, labels, recovery.
EXPECTED_HOSTILE: dict[str, str] = {
    "mpo_jpeg": "enriched",
    "heic": "dlq:format_unsupported",
    "url_zone_id": "dlq:url_invalid",
    "url_punycode": "dlq:url_invalid",
}


def expected_outcome(kind: str) -> str:
    return EXPECTED_HOSTILE.get(kind, "dlq:*")


def outcome_matches(expected: str, got: str) -> bool:
    if expected == "dlq:*":
        return got.startswith("dlq:") and got != "dlq:internal_error"
    return got == expected


_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08free" + bytes(200)


def hostile_values(product_id: str, rng: random.Random) -> dict[str, bytes | None]:
    """Every hostile value of the issue's corpus, keyed by kind; ``product_id`` where an event has one."""
    b64 = base64.b64encode

    def event(**fields: object) -> bytes:
        return json.dumps(submitted(product_id, **fields)).encode()

    base = submitted(product_id, image_b64=image_pool()[0])
    huge = json.dumps(base)[:-1] + ', "n": ' + "9" * 5000 + "}"  # a JSON int beyond Python's 4,300 digits
    junk = rng.randbytes(600_000)  # base64 of it is ~800 KB: its dead letter would pass 1 MB
    return {
        "huge_int": huge.encode(),
        "big_inline": event(image_b64=b64(junk).decode()),
        "url_zone_id": event(image_url="http://[fe80::1%25é]/x.jpg"),
        "url_punycode": event(image_url="http://xn--a.com/x.jpg"),
        "invalid_utf8": b'{"schema_version": 1, "event_id": "\xff\xfe", "product_id": "' + product_id.encode() + b'"}',
        "deep_json": b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "mpo_jpeg": event(image_b64=b64(_mpo()).decode()),
        "heic": event(image_b64=b64(_HEIC).decode()),
        "empty": b"",
        "tombstone": None,
        "not_object": b'["not", "an", "object"]',
        "unknown_field": json.dumps({**base, "colour": "red"}).encode(),
    }
