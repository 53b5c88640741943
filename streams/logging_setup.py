"""Logging: JSON lines with the same keys from structlog and from the standard library.

Our code logs through structlog; faust, aiokafka, pymilvus and the rest log through the standard
``logging`` module. Both end up as one JSON object a line on stderr, each with ``event``, ``level``,
``timestamp`` and ``logger`` (plus ``exception`` when there is one, plus the contextvars bound
at the time, e.g. ``event_id``): structlog renders its own events, and a root ``logging``
handler renders every standard-library record with ``structlog.stdlib.ProcessorFormatter``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


class CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at write time.

    Why: a logger bound to the ``sys.stderr`` object of the moment it was configured keeps
    writing to it after it is replaced and closed (a test runner's capture, a daemon
    redirecting its output), and every later log call then raises instead of logging.

    One exception: a ``sys.stderr`` that feeds the logging system itself (faust's worker
    replaces it with mode's ``FileLogProxy``, whose ``logger`` receives what is written) is
    passed over for the process's own stderr; writing a log line into it would log the line
    again, wrapped in another record (and the root handler would loop).
    """

    @staticmethod
    def stream() -> TextIO:
        current = sys.stderr
        if isinstance(getattr(current, "logger", None), logging.Logger) and sys.__stderr__ is not None:
            return sys.__stderr__
        return current

    def write(self, text: str) -> int:
        return self.stream().write(text)

    def flush(self) -> None:
        self.stream().flush()


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's ``PrintLogger`` with the name given to ``structlog.get_logger(name)``, for the ``logger`` key."""

    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: Any) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(self._file, str(args[0]) if args else "catalog")


class StructlogHandler(logging.StreamHandler):
    """The root handler: standard-library records rendered as structlog renders its own events."""


class LiteUnimplementedFilter(logging.Filter):
    """Drops gRPC's error record for the calls Milvus Lite does not implement and pymilvus can do without.

    Why: pymilvus asks for a timestamp (``AllocTimestamp``) while it waits for a new index; Lite,
    served in this process when a command opens a ``.db`` file, answers UNIMPLEMENTED, pymilvus
    goes on without it, and gRPC's server logs the refusal as an error with a traceback. Only a
    refusal raised in one of ``TOLERATED`` is dropped; every other gRPC error reaches the log.
    """

    TOLERATED = frozenset({"AllocTimestamp"})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "grpc._server" or "Method not implemented!" not in record.getMessage():
            return True
        return _raised_in(record) not in self.TOLERATED


def _raised_in(record: logging.LogRecord) -> str | None:
    """The function whose frame raised the record's exception (the traceback's last frame)."""
    tb = record.exc_info[2] if record.exc_info else None
    name = None
    while tb is not None:
        name, tb = tb.tb_frame.f_code.co_name, tb.tb_next
    return name


def _shared_processors() -> list[Any]:
    """What both kinds of line get before rendering: contextvars, level, logger name, UTC timestamp."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", json_lines: bool = True) -> StructlogHandler:
    """Configure structlog and put one ``StructlogHandler`` on the root logger (replacing an earlier one).

    The root logger's level becomes WARNING or ``level`` if higher: libraries' INFO chatter stays
    out of the commands' output, as before; the worker's faust sets the root level to the
    worker's own level and ``use_structlog_handler`` then puts this handler back in place.
    Returns the handler (the worker installs its repeat filter on it).
    """
    level_no = logging.getLevelName(level.upper())
    if not isinstance(level_no, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    stream = CurrentStderr()
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=_NamedPrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = StructlogHandler(stream)
    handler.addFilter(LiteUnimplementedFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StructlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level_no, logging.WARNING))
    return handler


def use_structlog_handler(logger: logging.Logger, handler: StructlogHandler, level: int) -> None:
    """Make ``handler`` the only handler of ``logger`` at ``level`` (faust's worker just set up its own).

    faust's ``setup_logging`` clears the root handlers and installs a colour-formatted one bound to
    the ``sys.stderr`` object of that moment; at WARNING and above faust also adds a terminal-spinner
    handler and lowers the root level to DEBUG. The structlog handler takes their place and the
    level is the worker's again, so faust's and aiokafka's records are JSON lines written to the
    stderr of the moment.
    """
    for old in list(logger.handlers):
        if old is not handler:
            logger.removeHandler(old)
    if handler not in logger.handlers:
        logger.addHandler(handler)
    logger.setLevel(level)
