"""Turn the two event fields into raw bytes: strict base64 and capped local-file reads."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from processors.intake import codes as c

_DATA_URI = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def b64_payload(value: str, max_bytes: int) -> str:
    """Strip an optional ``data:image/...;base64,`` prefix and refuse oversize text before decoding."""
    if not isinstance(value, str):
        c.reject(c.B64_INVALID, "image_b64 must be a string")
    text = value.strip()
    if text[:5].lower() == "data:":
        prefix = _DATA_URI.match(text)
        if prefix is None:
            c.reject(c.B64_INVALID, "data: URI must be data:image/<type>;base64,<payload>")
        text = text[prefix.end() :]
    if len(text) > 4 * -(-max_bytes // 3):
        c.reject(c.PAYLOAD_TOO_LARGE, f"base64 payload encodes more than {max_bytes} bytes")
    return text


def decode_b64(text: str, max_bytes: int) -> bytes:
    """Strict standard-alphabet base64 (no whitespace, exact padding); CPU-bound for big inputs."""
    if len(text) % 4:
        c.reject(c.B64_INVALID, "image_b64 length is not a multiple of 4 (wrong padding)")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        c.reject(c.B64_INVALID, f"image_b64 is not valid base64: {exc}")
    if len(data) > max_bytes:
        c.reject(c.PAYLOAD_TOO_LARGE, f"decoded payload exceeds {max_bytes} bytes")
    return data


def read_file_capped(path: Path, max_bytes: int) -> bytes:
    """Read a vetted local file, never more than ``max_bytes`` + 1 bytes; blocking, use a thread."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        c.reject(c.FILE_NOT_FOUND, "file disappeared before it could be read")
    except OSError as exc:
        c.reject(c.FILE_NOT_FOUND, f"file cannot be read: {exc.strerror}")
    if len(data) > max_bytes:
        c.reject(c.PAYLOAD_TOO_LARGE, f"file exceeds {max_bytes} bytes")
    return data
