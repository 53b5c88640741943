"""Bytes -> normalised RGB image, refusing bombs and broken files before they cost memory.

The header is read first (``Image.open`` is lazy) so format and pixel count are vetted before
any pixel data is decompressed. PIL's global settings are left alone: the decoder runs in a
thread pool shared with other code.

Phones write multi-picture JPEGs (Pillow: ``MPO``); their first frame is an ordinary JPEG, so
they count as JPEG. Files Pillow cannot identify are named by their magic bytes when they are a
well-known format (HEIC/AVIF by their ISO-BMFF ``ftyp`` brand, TIFF, JPEG XL, PDF, SVG...), so
the seller hears "format_unsupported: HEIC" instead of "undecodable".
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from processors.intake import codes as c
from processors.intake.config import IntakeConfig

_WHITE = (255, 255, 255)
# Pillow formats that are another allowed format in a wrapper: MPO's first frame is a JPEG
_SAME_AS = {"MPO": "JPEG"}
# ISO-BMFF brands (ISO/IEC 23008-12, AV1 image file format); generic HEIF brands say less than these
_BMFF_BRANDS = {
    **dict.fromkeys((b"avif", b"avis"), "AVIF"),
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"), "HEIC"),
    **dict.fromkeys((b"mif1", b"msf1", b"mif2", b"miaf"), "HEIF"),
    b"jxl ": "JPEG XL",
    b"crx ": "CR3",
}
_MAGIC = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"),
    (b"\xffO\xffQ", "JPEG2000"),  # raw J2K codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),  # bare JPEG XL codestream
    (b"%PDF-", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"BM", "BMP"),
)
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
    source_format = _SAME_AS.get(str(img.format), str(img.format))
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
        _refuse_known_format(data, config)
        c.reject(c.IMAGE_UNDECODABLE, "payload is not a recognisable image")
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        _refuse_known_format(data, config)
        c.reject(c.IMAGE_UNDECODABLE, f"image header is unreadable: {exc}")
    fmt = str(img.format)
    if fmt not in config.allowed_formats and _SAME_AS.get(fmt) not in config.allowed_formats:
        c.reject(c.FORMAT_UNSUPPORTED, f"format {fmt} not in {sorted(config.allowed_formats)}")
    width, height = img.size
    if width <= 0 or height <= 0:
        c.reject(c.IMAGE_UNDECODABLE, f"image declares empty size {width}x{height}")
    if width * height > config.max_pixels:
        c.reject(c.IMAGE_TOO_MANY_PIXELS, f"{width}x{height} exceeds {config.max_pixels} pixels")
    return img


def sniff_format(data: bytes) -> str | None:
    """Name a well-known image or document format by its magic bytes; None when nothing matches."""
    if data[4:8] == b"ftyp":
        size = int.from_bytes(data[:4], "big")
        brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(max(size, 16), 256, len(data)) - 3, 4)]
        named = [_BMFF_BRANDS[b] for b in brands if b in _BMFF_BRANDS]
        specific = [n for n in named if n != "HEIF"]
        if specific or named:
            return (specific or named)[0]
        return f"ISO-BMFF ({data[8:12].decode('latin-1').strip()})"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in head:
        return "SVG"
    return None


def _refuse_known_format(data: bytes, config: IntakeConfig) -> None:
    """Pillow could not read it; if it is a known format we do not accept, say which."""
    name = sniff_format(data)
    if name is not None and name not in config.allowed_formats:
        c.reject(c.FORMAT_UNSUPPORTED, f"format {name} not in {sorted(config.allowed_formats)}")


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
