"""Image intake for sellers' product images: base64 or URL in, normalised RGB image out.

Public API::

    IntakeConfig(...)                                   # frozen limits, see config.py
    ImageIntake(config, http_client=None, resolver=None)  # resolver: async (host, port) -> addresses
        await load(*, image_b64, image_url) -> DecodedImage
        await load_many(refs, concurrency=16) -> list[DecodedImage | ProcessingError]
        await aclose()
    DecodedImage(image, source_format, width, height, byte_count)  # width/height: the original's
    decode_image(data, config) -> DecodedImage          # sync, CPU-bound; shrinks on load when
                                                        # config.shrink_to is set (JPEG draft + reduce)
    UrlPolicy(config, resolver=None).check(url) -> VettedUrl | Path, is_forbidden_address(ip)
    PinnedTransport()                                   # httpx transport: connects only to vetted addresses

Every refusal is ``InputRejected(code, message, stage="intake")``. Codes (``CODES``):

- image_missing / image_ambiguous: neither / both of image_b64 and image_url given
- b64_invalid: not strict standard base64 (bad char, padding, whitespace, bad data: prefix)
- payload_too_large: base64 text, decoded bytes or local file above ``max_bytes``
- image_empty: zero-byte payload
- image_undecodable: PIL cannot identify the bytes or read the header
- image_truncated: pixel data ends early
- image_corrupt: pixel data is broken (bad CRC, broken stream)
- image_too_many_pixels: header declares more than ``max_pixels`` (decompression bomb)
- format_unsupported: identified format not in ``allowed_formats`` (e.g. GIF, BMP, TIFF), named in
  the message; HEIC/HEIF/AVIF (ISO-BMFF brand), JPEG XL, PDF, SVG... are named by magic bytes.
  MPO (a phone's multi-picture JPEG) counts as JPEG: its first frame is decoded
- url_invalid: unparseable, whitespace/control chars, no host, bad port (also non-ASCII digits),
  too long, IPv6 zone id, empty or over-long DNS label, punycode that does not decode
- url_scheme_forbidden: scheme other than the allowed http(s) (ftp:, javascript:, data:)
- url_credentials_forbidden: user:pass@ in the URL
- url_host_unresolvable: DNS failure or timeout
- url_host_forbidden: any resolved address private/loopback/link-local/multicast/reserved/
  unspecified/shared/IPv4-embedded-of-those and not allow-listed
- file_url_disabled: file:// while ``allow_file_urls`` is off
- file_outside_root: real path (after symlinks and ``..``) outside ``file_root``
- file_not_found: file:// path missing or not a regular file
- fetch_timeout: every attempt exceeded ``fetch_timeout_s``
- fetch_http_status: 4xx at once; 5xx/408/425/429 after the attempts; 3xx without Location
- fetch_failed: connection/protocol errors on every attempt (refused, reset, short body)
- fetch_too_large: Content-Length or streamed body above ``max_bytes``
- redirect_forbidden: more than ``max_redirects``, a loop, or a hop to a refused target

Every hop connects to an address its vetting resolved, never to a second DNS answer (rebinding).
- internal_error: unexpected exception, only reported in ``load_many`` slots
"""

from processors.intake.codes import CODES
from processors.intake.config import IntakeConfig
from processors.intake.decode import DecodedImage, decode_image
from processors.intake.intake import ImageIntake
from processors.intake.pinning import PinnedTransport
from processors.intake.url_policy import Resolver, UrlPolicy, VettedUrl, is_forbidden_address

__all__ = [
    "CODES",
    "DecodedImage",
    "ImageIntake",
    "IntakeConfig",
    "PinnedTransport",
    "Resolver",
    "UrlPolicy",
    "VettedUrl",
    "decode_image",
    "is_forbidden_address",
]
