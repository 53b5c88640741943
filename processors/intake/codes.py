"""Machine-readable refusal codes of the intake stage, one per distinct failure cause."""

from __future__ import annotations

from typing import NoReturn

from processors.errors import InputRejected

STAGE = "intake"

IMAGE_MISSING = "image_missing"
IMAGE_AMBIGUOUS = "image_ambiguous"
B64_INVALID = "b64_invalid"
PAYLOAD_TOO_LARGE = "payload_too_large"
IMAGE_EMPTY = "image_empty"
IMAGE_UNDECODABLE = "image_undecodable"
IMAGE_TRUNCATED = "image_truncated"
IMAGE_CORRUPT = "image_corrupt"
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
FORMAT_UNSUPPORTED = "format_unsupported"
URL_INVALID = "url_invalid"
URL_SCHEME_FORBIDDEN = "url_scheme_forbidden"
URL_CREDENTIALS_FORBIDDEN = "url_credentials_forbidden"
URL_HOST_UNRESOLVABLE = "url_host_unresolvable"
URL_HOST_FORBIDDEN = "url_host_forbidden"
FILE_URL_DISABLED = "file_url_disabled"
FILE_OUTSIDE_ROOT = "file_outside_root"
FILE_NOT_FOUND = "file_not_found"
FETCH_TIMEOUT = "fetch_timeout"
FETCH_HTTP_STATUS = "fetch_http_status"
FETCH_FAILED = "fetch_failed"
FETCH_TOO_LARGE = "fetch_too_large"
REDIRECT_FORBIDDEN = "redirect_forbidden"
INTERNAL_ERROR = "internal_error"  # a bug met while loading one image (same code as the worker's)

CODES: tuple[str, ...] = (
    IMAGE_MISSING,
    IMAGE_AMBIGUOUS,
    B64_INVALID,
    PAYLOAD_TOO_LARGE,
    IMAGE_EMPTY,
    IMAGE_UNDECODABLE,
    IMAGE_TRUNCATED,
    IMAGE_CORRUPT,
    IMAGE_TOO_MANY_PIXELS,
    FORMAT_UNSUPPORTED,
    URL_INVALID,
    URL_SCHEME_FORBIDDEN,
    URL_CREDENTIALS_FORBIDDEN,
    URL_HOST_UNRESOLVABLE,
    URL_HOST_FORBIDDEN,
    FILE_URL_DISABLED,
    FILE_OUTSIDE_ROOT,
    FILE_NOT_FOUND,
    FETCH_TIMEOUT,
    FETCH_HTTP_STATUS,
    FETCH_FAILED,
    FETCH_TOO_LARGE,
    REDIRECT_FORBIDDEN,
    INTERNAL_ERROR,
)


def rejected(code: str, message: str) -> InputRejected:
    """Build the intake-stage refusal so every call site tags the stage the same way."""
    return InputRejected(code, message, stage=STAGE)


def reject(code: str, message: str) -> NoReturn:
    """Raise the intake-stage refusal."""
    raise rejected(code, message)
