"""Sending a batch's outputs through faust, with a verdict per message.

Why per message: a retry must re-send only what the broker has not acknowledged, and a
message the broker can never take (too large) must be told apart from an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import faust
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

from processors.errors import InputRejected, ProcessingError, TransientFailure
from streams.worker import Outgoing

_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


def classify_send_error(exc: BaseException) -> ProcessingError:
    """Too large is permanent (retrying re-sends the same bytes); anything else is the broker being unhappy."""
    if isinstance(exc, _TOO_LARGE):
        return InputRejected("output_too_large", f"{type(exc).__name__}: {str(exc)[:300]}", stage="publish")
    return TransientFailure("kafka_produce_failed", f"{type(exc).__name__}: {str(exc)[:300]}", stage="publish")


class FaustPublisher:
    def __init__(self, topics: dict[str, faust.TopicT]) -> None:
        self._topics = topics

    async def publish(self, messages: Sequence[Outgoing]) -> list[ProcessingError | None]:
        verdicts: list[ProcessingError | None] = [None] * len(messages)
        waiting: list[tuple[int, Awaitable[Any]]] = []
        for i, m in enumerate(messages):
            try:
                waiting.append((i, await self._topics[m.topic].send(key=m.key, value=m.value)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # faust/aiokafka raise many types at send time
                verdicts[i] = classify_send_error(exc)
        results = await asyncio.gather(*(f for _, f in waiting), return_exceptions=True)
        for (i, _), result in zip(waiting, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                verdicts[i] = classify_send_error(result)
        return verdicts
