"""Bytes -> normalised RGB image, refusing bombs and broken files before they cost memory.

The header is read first (``Image.open`` is lazy) so format and pixel count are vetted before
any pixel data is decompressed. PIL's global settings are left alone: the decoder runs in a
thread pool shared with other code.

Phones write multi-picture JPEGs (Pillow: ``MPO``); their first frame is an ordinary JPEG, so
they count as JPEG. Files Pillow cannot identify are named by their magic bytes when they are a
well-known format (HEIC/AVIF by their ISO-BMFF ``ftyp`` brand, TIFF, JPEG XL, PDF, SVG...), so
the seller hears "format_unsupported: HEIC" instead of "undecodable".

Shrink on load: a 6000x4000 phone photo decoded in full is 96 MB of raster (Pillow keeps RGB in
4 bytes a pixel) to feed a 64 px model. With ``IntakeConfig.shrink_to`` set, a JPEG is decoded at
1/2, 1/4 or 1/8 scale by libjpeg itself (``Image.draft``: the DCT is scaled, the full raster never
exists), and any image is then box-reduced by whole factors (``Image.reduce``) while every side
stays at or above ``shrink_margin x shrink_to``. Orientation is applied after the load, on the
small raster. The reported width and height stay the original's, as displayed.

Two steps, so a caller can budget memory between them: ``open_image`` vets the header and says
what the decode will cost (``OpenedImage.peak_bytes``); ``finish_decode`` does the work.
``decode_image`` is both at once.
"""

from __future__ import annotations

import contextlib
import io
import math
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
_REDUCE_FIRST = frozenset({"RGB", "L"})  # box-reduced before the RGB conversion; others are converted first
_ORIENTATION = 0x0112
_TRANSPOSED = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
# Pillow holds 8-bit RGB/RGBA/CMYK rasters in 4 bytes a pixel; a decode holds at most about two rasters
# at once (the decoded one and one transposed or converted copy)
_RASTER_BYTES_PER_PIXEL = 4
_RASTER_COPIES = 2


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A fully loaded RGB image plus what it was before normalisation.

    ``width`` and ``height`` are the original's, as displayed (after EXIF orientation), whatever
    size ``image`` was shrunk to on load.
    """

    image: Image.Image
    source_format: str
    width: int
    height: int
    byte_count: int


@dataclass(frozen=True, slots=True)
class OpenedImage:
    """A vetted header whose pixels are not decoded yet (set to decode at a reduced scale where possible).

    ``width`` and ``height`` are the header's, before orientation: a PNG's EXIF may follow its pixel
    data, so orientation is read only once the pixels are loaded.
    """

    image: Image.Image
    source_format: str
    width: int
    height: int
    byte_count: int

    @property
    def peak_bytes(self) -> int:
        """Estimated pixel memory the decode holds at its peak, at the scale it will decode at."""
        w, h = self.image.size
        return w * h * _RASTER_BYTES_PER_PIXEL * _RASTER_COPIES


def decode_image(data: bytes, config: IntakeConfig) -> DecodedImage:
    """Decode and normalise ``data`` or raise ``InputRejected``; CPU-bound, call it in a thread."""
    return finish_decode(open_image(data, config), config)


def open_image(data: bytes, config: IntakeConfig) -> OpenedImage:
    """Vet size, format and pixel count from the header, and choose the decode scale; cheap."""
    if not data:
        c.reject(c.IMAGE_EMPTY, "image payload is empty")
    if len(data) > config.max_bytes:
        c.reject(c.PAYLOAD_TOO_LARGE, f"image payload exceeds {config.max_bytes} bytes")
    img = _open_header(data, config)
    width, height = img.size
    source_format = _SAME_AS.get(str(img.format), str(img.format))
    need = _min_side(config)
    if need is not None and min(img.size) >= 2 * need:
        img.draft(img.mode, (need, need))  # JPEG only (a no-op elsewhere): libjpeg decodes at 1/2, 1/4 or 1/8
    return OpenedImage(img, source_format, width, height, len(data))


def finish_decode(opened: OpenedImage, config: IntakeConfig) -> DecodedImage:
    """Decode the pixels, apply orientation, shrink and normalise to RGB; CPU-bound, call it in a thread."""
    img = opened.image
    try:
        img.load()
    except (OSError, EOFError, SyntaxError, ValueError, IndexError) as exc:
        text = str(exc).lower()
        code = c.IMAGE_TRUNCATED if isinstance(exc, EOFError) or "truncat" in text else c.IMAGE_CORRUPT
        c.reject(code, f"image data cannot be decoded: {exc}")
    except Image.DecompressionBombError as exc:
        c.reject(c.IMAGE_TOO_MANY_PIXELS, str(exc))
    width, height = _displayed_size(img, opened.width, opened.height)
    img = _apply_orientation(img)
    need = _min_side(config)
    rgb = _to_rgb(_reduce(img, need)) if img.mode in _REDUCE_FIRST else _reduce(_to_rgb(img), need)
    return DecodedImage(rgb, opened.source_format, width, height, opened.byte_count)


def _min_side(config: IntakeConfig) -> int | None:
    """The smallest side a shrunk image may have; None: do not shrink."""
    if config.shrink_to is None:
        return None
    return math.ceil(config.shrink_margin * config.shrink_to)


def _reduce(img: Image.Image, need: int | None) -> Image.Image:
    """Box-reduce by one whole factor (aspect kept) while the shorter side stays >= ``need``."""
    if need is None:
        return img
    factor = min(img.width, img.height) // need
    return img.reduce(factor) if factor >= 2 else img


def _displayed_size(img: Image.Image, width: int, height: int) -> tuple[int, int]:
    """The header's size as displayed: EXIF orientations 5-8 swap the sides (call it after ``load``)."""
    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # a broken EXIF block is ignored here as in _apply_orientation
        return width, height
    return (height, width) if orientation in _TRANSPOSED else (width, height)


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
    """Honour EXIF orientation (in place: no copy when there is nothing to do); broken EXIF keeps the pixels."""
    with contextlib.suppress(Exception):  # EXIF parsing failures are cosmetic: keep the pixels
        ImageOps.exif_transpose(img, in_place=True)
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
