"""structlog configuration: JSON lines carrying event_id and product_id where known."""

from __future__ import annotations

import logging
import sys

import structlog


class CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at write time.

    Why: a logger bound to the ``sys.stderr`` object of the moment it was configured keeps
    writing to it after it is replaced and closed (a test runner's capture, a daemon
    redirecting its output), and every later log call then raises instead of logging.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    renderer = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
