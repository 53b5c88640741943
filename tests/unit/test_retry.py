"""Transient failures are retried with capped backoff until they heal; everything else propagates."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from processors.errors import InputRejected, TransientFailure
from streams.retry import Backoff, retry_transient

TINY = Backoff(initial_s=0.001, max_s=0.002)


def first(backoff: Backoff, count: int) -> list[float]:
    return list(itertools.islice(backoff.delays(), count))


def test_default_backoff_doubles_then_caps_at_thirty_seconds() -> None:
    assert first(Backoff(), 9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_uses_its_factor_and_cap() -> None:
    assert first(Backoff(initial_s=1.0, max_s=10.0, factor=3.0), 5) == [1.0, 3.0, 9.0, 10.0, 10.0]


def test_each_delays_call_starts_over() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    assert first(backoff, 3) == first(backoff, 3) == [1.0, 2.0, 4.0]


def test_backoff_never_ends() -> None:
    assert len(first(Backoff(initial_s=0.1, max_s=0.2), 1000)) == 1000


class Flaky:
    """Fails ``failures`` times with ``TransientFailure``, then returns ``value``."""

    def __init__(self, failures: int, value: object = "done") -> None:
        self.failures = failures
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientFailure("vector_index_unavailable", f"attempt {self.calls}", stage="index")
        return self.value


async def test_returns_the_value_without_retrying_when_it_succeeds() -> None:
    action = Flaky(0, value={"ok": 1})
    seen: list[TransientFailure] = []
    assert await retry_transient(action, TINY, on_retry=seen.append) == {"ok": 1}
    assert action.calls == 1
    assert seen == []


async def test_retries_transient_failures_until_success() -> None:
    action = Flaky(3)
    seen: list[TransientFailure] = []
    assert await retry_transient(action, TINY, on_retry=seen.append) == "done"
    assert action.calls == 4
    assert [e.message for e in seen] == ["attempt 1", "attempt 2", "attempt 3"]
    assert all(e.error_code == "vector_index_unavailable" for e in seen)


async def test_on_retry_is_optional() -> None:
    assert await retry_transient(Flaky(2), TINY) == "done"


@pytest.mark.parametrize(
    "error",
    [InputRejected("image_missing", "no image", stage="intake"), ValueError("boom"), KeyError("k")],
    ids=["input-rejected", "value-error", "key-error"],
)
async def test_other_errors_propagate_at_once(error: Exception) -> None:
    calls = 0
    seen: list[TransientFailure] = []

    async def action() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)) as info:
        await retry_transient(action, TINY, on_retry=seen.append)
    assert info.value is error
    assert calls == 1
    assert seen == []


async def test_non_transient_after_transient_propagates() -> None:
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientFailure("broker_unavailable", "down", stage="publish")
        raise InputRejected("field_invalid", "bad", stage="validate")

    with pytest.raises(InputRejected):
        await retry_transient(action, TINY)
    assert calls == 2


async def test_cancellation_during_backoff_propagates() -> None:
    action = Flaky(10**9)
    seen: list[TransientFailure] = []
    task = asyncio.create_task(retry_transient(action, Backoff(initial_s=60.0, max_s=60.0), on_retry=seen.append))
    while not seen:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert action.calls == 1


async def test_cancellation_during_the_action_propagates() -> None:
    started = asyncio.Event()

    async def action() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(retry_transient(action, TINY))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
