"""Shrink on load: JPEG draft + box reduce must feed the models what the full decode fed them, for less.

The reference is the old path: the full decode (``shrink_to=None``) then the model's own resize.
Both go through the model's real preprocessing, so the comparison is at the size the models see.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model_store.preprocess import PreprocessSpec
from processors.intake import DecodedImage, ImageIntake, IntakeConfig, decode_image
from processors.intake.decode import open_image

MODEL = 64
SHRUNK = IntakeConfig(shrink_to=MODEL)
FULL = IntakeConfig()


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture over a colour gradient, with fine grain: what a product photo's statistics look like."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 40), max(2, width // 40), 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    gx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    gy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    gradient = gx * np.array([200, 40, 90], np.float32) + gy * np.array([30, 180, 60], np.float32)
    grain = rng.normal(0.0, 4.0, (height, width, 1)).astype(np.float32)
    return np.clip(0.5 * texture + 0.5 * gradient + grain, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray | Image.Image, fmt: str, **kw: Any) -> bytes:
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def model_input(decoded: DecodedImage) -> np.ndarray:
    return PreprocessSpec(MODEL).images_to_uint8([decoded.image]).astype(np.int16)


@pytest.mark.parametrize(
    ("width", "height", "fmt"),
    [
        pytest.param(3000, 2000, "JPEG", id="jpeg-landscape-3000x2000"),
        pytest.param(1536, 2048, "JPEG", id="jpeg-portrait-1536x2048"),
        pytest.param(700, 500, "JPEG", id="jpeg-700x500"),
        pytest.param(1200, 800, "PNG", id="png-reduce-only"),
        pytest.param(1000, 1000, "WEBP", id="webp-reduce-only"),
    ],
)
def test_shrunk_decode_looks_like_the_full_decode_at_model_size(width: int, height: int, fmt: str) -> None:
    data = encode(photo_like(width, height), fmt, **({"quality": 90} if fmt != "PNG" else {}))
    full, shrunk = decode_image(data, FULL), decode_image(data, SHRUNK)
    assert (shrunk.width, shrunk.height) == (full.width, full.height) == (width, height)
    assert full.image.size == (width, height)
    assert 2 * MODEL <= min(shrunk.image.size) < 4 * MODEL, shrunk.image.size
    assert abs(shrunk.image.width / shrunk.image.height - width / height) < 0.02  # the aspect is kept
    diff = np.abs(model_input(full) - model_input(shrunk))
    # a naive shrink (nearest to 64 px) measured mean 3.2-11, 99th percentile 11-35 on these images
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 10, (diff.mean(), np.percentile(diff, 99))


def test_a_large_jpeg_is_decoded_at_reduced_scale_not_in_full() -> None:
    data = encode(photo_like(3000, 2000), "JPEG", quality=90)
    assert open_image(data, SHRUNK).image.size == (375, 250)  # libjpeg's 1/8 scale: the full raster never exists
    assert open_image(data, FULL).image.size == (3000, 2000)
    assert open_image(data, SHRUNK).peak_bytes * 60 < open_image(data, FULL).peak_bytes


def test_small_images_are_left_alone() -> None:
    data = encode(photo_like(200, 150), "JPEG", quality=90)
    assert decode_image(data, SHRUNK).image.size == (200, 150)


def test_exif_orientation_is_kept_when_shrunk() -> None:
    pixels = np.zeros((2000, 3000, 3), np.uint8)
    pixels[:, :1500] = (230, 20, 20)  # stored left half red, right half blue
    pixels[:, 1500:] = (20, 20, 230)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: the stored left half ends on top
    data = encode(pixels, "JPEG", quality=90, exif=exif.tobytes())
    shrunk, full = decode_image(data, SHRUNK), decode_image(data, FULL)
    assert (shrunk.width, shrunk.height) == (full.width, full.height) == (2000, 3000)
    w, h = shrunk.image.size
    assert h > w and min(w, h) < 4 * MODEL
    top, bottom = shrunk.image.getpixel((w // 2, h // 10)), shrunk.image.getpixel((w // 2, h - h // 10))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0], (top, bottom)
    assert np.abs(model_input(full) - model_input(shrunk)).mean() < 2.0


def test_phone_mpo_is_a_jpeg_decoded_at_reduced_scale_from_its_first_frame() -> None:
    frames = [Image.new("RGB", (2400, 1600), (240, 10, 10)), Image.new("RGB", (320, 240), (10, 10, 240))]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data, SHRUNK)
    assert (decoded.source_format, decoded.width, decoded.height) == ("JPEG", 2400, 1600)
    assert min(decoded.image.size) < 4 * MODEL
    red, green, blue = decoded.image.getpixel((decoded.image.width // 2, decoded.image.height // 2))
    assert red > 200 and green < 40 and blue < 40


def test_shrink_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="shrink_to"):
        IntakeConfig(shrink_to=0)
    with pytest.raises(ValueError, match="shrink_margin"):
        IntakeConfig(shrink_to=64, shrink_margin=0.5)


async def test_intake_serves_shrunk_images_with_the_original_size() -> None:
    import base64

    data = encode(photo_like(2400, 1800), "JPEG", quality=90)
    async with ImageIntake(SHRUNK) as intake:
        decoded = await intake.load(image_b64=base64.b64encode(data).decode(), image_url=None)
    assert (decoded.width, decoded.height) == (2400, 1800) and min(decoded.image.size) < 4 * MODEL
