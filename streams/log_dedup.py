"""Collapse floods of the same library warning or error (a broker outage: ~100 lines a second).

Why a filter on the handlers: aiokafka and faust log through the standard ``logging`` module
from many loggers; a handler filter sees every record that would be written, whatever its
logger. The first record of a kind (logger, level, message template) is written; repeats
within ``window_s`` are counted, not written; the first repeat after the window is written
with the count of those it stood for, so an outage still shows up once per window per kind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RepeatFilter(logging.Filter):
    """A ``logging.Filter`` that lets one record of a kind through per window (WARNING and above)."""

    def __init__(
        self, window_s: float, level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind -> (window start, suppressed)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.window_s <= 0 or record.levelno < self.level:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            started, suppressed = self._seen.get(kind, (None, 0))
            if started is not None and now - started < self.window_s:
                self._seen[kind] = (started, suppressed + 1)
                return False
            self._seen[kind] = (now, 0)
            if len(self._seen) > 10_000:  # many distinct messages: forget the oldest windows
                oldest = sorted(self._seen.items(), key=lambda kv: kv[1][0])[:5_000]
                for key, _ in oldest:
                    self._seen.pop(key, None)
        if suppressed and started is not None:  # a count only comes with the window it was counted in
            record.msg = f"{record.msg} [{suppressed} more like this in the last {now - started:.0f}s not shown]"
        return True


def install(filter_: logging.Filter, logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if filter_ not in handler.filters:
            handler.addFilter(filter_)
