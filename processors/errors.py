"""Typed processing errors: every refusal carries a machine-readable code.

The dead-letter decision is made in ``streams`` from these types alone:
``InputRejected`` means the input itself is bad (dead-letter it), ``TransientFailure``
means the world is temporarily broken (retry, never dead-letter).
"""

from __future__ import annotations


class ProcessingError(Exception):
    """Base of every error raised by a processing stage."""

    retryable: bool = False

    def __init__(self, error_code: str, message: str, *, stage: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.stage = stage


class InputRejected(ProcessingError):
    """The event or its image is unacceptable; retrying cannot help."""

    retryable = False


class TransientFailure(ProcessingError):
    """A dependency failed in a way that may heal (timeouts, outages)."""

    retryable = True


class ConfigurationError(ProcessingError):
    """The deployment is set up wrongly (a setting, an alias, a schema); no retry can fix it."""

    retryable = False
