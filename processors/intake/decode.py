"""Bytes -> normalised RGB image, refusing bombs and broken files before they cost memory.

The header is read first (``Image.open`` is lazy) so format and pixel count are vetted before
any pixel data is decompressed. PIL's global settings are left alone: the decoder runs in a
thread pool shared with other code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from processors.intake import codes as c
from processors.intake.config import IntakeConfig

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A fully loaded RGB image plus what it was before normalisation."""

    image: Image.Image
    source_format: str
    width: int
    height: int
    byte_count: int


def decode_image(data: bytes, config: IntakeConfig) -> DecodedImage:
    """Decode and normalise ``data`` or raise ``InputRejected``; CPU-bound, call it in a thread."""
    if not data:
        c.reject(c.IMAGE_EMPTY, "image payload is empty")
    if len(data) > config.max_bytes:
        c.reject(c.PAYLOAD_TOO_LARGE, f"image payload exceeds {config.max_bytes} bytes")
    img = _open_header(data, config)
    try:
        img.load()
    except (OSError, EOFError, SyntaxError, ValueError, IndexError) as exc:
        text = str(exc).lower()
        code = c.IMAGE_TRUNCATED if isinstance(exc, EOFError) or "truncat" in text else c.IMAGE_CORRUPT
        c.reject(code, f"image data cannot be decoded: {exc}")
    except Image.DecompressionBombError as exc:
        c.reject(c.IMAGE_TOO_MANY_PIXELS, str(exc))
    source_format = str(img.format)
    rgb = _to_rgb(_apply_orientation(img))
    return DecodedImage(rgb, source_format, rgb.width, rgb.height, len(data))


def _open_header(data: bytes, config: IntakeConfig) -> Image.Image:
    """Identify the file from its header only and check format and size before decoding."""
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # the warning arrives as an exception when the process runs with warnings as errors
        c.reject(c.IMAGE_TOO_MANY_PIXELS, f"image header declares too many pixels: {exc}")
    except UnidentifiedImageError:
        c.reject(c.IMAGE_UNDECODABLE, "payload is not a recognisable image")
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        c.reject(c.IMAGE_UNDECODABLE, f"image header is unreadable: {exc}")
    if img.format not in config.allowed_formats:
        c.reject(c.FORMAT_UNSUPPORTED, f"format {img.format} not in {sorted(config.allowed_formats)}")
    width, height = img.size
    if width <= 0 or height <= 0:
        c.reject(c.IMAGE_UNDECODABLE, f"image declares empty size {width}x{height}")
    if width * height > config.max_pixels:
        c.reject(c.IMAGE_TOO_MANY_PIXELS, f"{width}x{height} exceeds {config.max_pixels} pixels")
    return img


def _apply_orientation(img: Image.Image) -> Image.Image:
    """Honour EXIF orientation; a broken EXIF block must not cost the seller the image."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # EXIF parsing failures are cosmetic: keep the pixels
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Normalise every mode to 8-bit RGB, compositing transparency over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # PIL clips 16-bit grey to 255 when converting; scale it down instead.
        arr = np.asarray(img).astype(np.int64)
        img = Image.fromarray((np.clip(arr, 0, 65535) >> 8).astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
