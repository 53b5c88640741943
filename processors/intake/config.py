"""Limits and switches for image intake, fixed at construction so every check is reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """Intake limits; defaults are safe for untrusted seller input.

    ``max_bytes`` bounds the decoded payload (base64 or fetched), ``max_pixels`` bounds the
    decoded raster and is checked from the header before any pixel data is decompressed.
    ``private_host_allowlist`` holds hostnames, IPs or CIDRs that may resolve to private,
    loopback or link-local addresses (tests use ``{"127.0.0.1"}``); it is empty in production.

    ``shrink_to`` is the largest input side any served model needs (the pipeline sets it from the
    loaded models). A decoded image is shrunk on load, but every side is kept at or above
    ``shrink_margin`` x ``shrink_to``, so the model's own resize still filters from at least twice its
    input (as Pillow's ``reducing_gap=2`` does). ``None`` keeps the full size (only the models' own
    resize shrinks it). ``max_decoding_bytes`` bounds the pixel memory of the decodes running at once
    in one intake (each reserves its estimated peak before it starts); a decode that does not fit
    waits for room, one larger than the whole budget runs alone. Nothing is ever dropped for it.
    """

    max_bytes: int = 10_000_000
    max_pixels: int = 40_000_000
    allowed_formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP"})
    fetch_timeout_s: float = 5.0
    fetch_attempts: int = 2
    retry_backoff_s: float = 0.2
    allowed_url_schemes: frozenset[str] = frozenset({"http", "https"})
    allow_file_urls: bool = False
    file_root: Path | None = None
    private_host_allowlist: frozenset[str] = frozenset()
    max_redirects: int = 3
    max_concurrent_decodes: int = 4
    max_url_length: int = 4096
    shrink_to: int | None = None
    shrink_margin: float = 2.0
    max_decoding_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("max_bytes and max_pixels must be positive")
        if self.fetch_attempts < 1 or self.max_redirects < 0 or self.max_concurrent_decodes < 1:
            raise ValueError("fetch_attempts and max_concurrent_decodes must be >= 1, max_redirects >= 0")
        if self.fetch_timeout_s <= 0 or self.retry_backoff_s < 0:
            raise ValueError("fetch_timeout_s must be positive and retry_backoff_s non-negative")
        if self.shrink_to is not None and self.shrink_to < 1:
            raise ValueError("shrink_to must be >= 1 (or None: keep the full size)")
        if self.shrink_margin < 1.0 or self.max_decoding_bytes < 1:
            raise ValueError("shrink_margin must be >= 1 and max_decoding_bytes positive")
        if self.allow_file_urls and self.file_root is None:
            raise ValueError("allow_file_urls requires file_root")
