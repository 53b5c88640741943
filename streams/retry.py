"""Retry policy for transient failures: back off, never dead-letter, never give up while running."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from processors.errors import TransientFailure

T = TypeVar("T")
log = structlog.get_logger("catalog.retry")


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delays(self):  # noqa: ANN201 - infinite generator of seconds
        delay = self.initial_s
        while True:
            yield delay
            delay = min(self.max_s, delay * self.factor)


async def retry_transient(
    action: Callable[[], Awaitable[T]],
    backoff: Backoff,
    on_retry: Callable[[TransientFailure], None] | None = None,
) -> T:
    """Run ``action`` until it stops raising ``TransientFailure``.

    The caller holds the batch un-acked meanwhile, so its offsets stay put and the
    consumer stops fetching once its buffer is full: an outage pauses the stream
    instead of draining it into the dead-letter topic. Cancellation (worker stop)
    propagates, leaving the batch un-acked for the next owner of the partition.
    """
    delays = backoff.delays()
    while True:
        try:
            return await action()
        except TransientFailure as exc:
            delay = next(delays)
            if on_retry is not None:
                on_retry(exc)
            log.warning("transient_failure", error_code=exc.error_code, error=exc.message, retry_in_s=delay)
            await asyncio.sleep(delay)
