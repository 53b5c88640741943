"""A first-come-first-served budget of bytes for work that must not all hold memory at once.

Why not ``asyncio.Semaphore``: decodes differ in size by four orders of magnitude (a 64 px
thumbnail against a 40-megapixel PNG), so a count of slots bounds nothing. Each holder reserves
what it will need; a reservation larger than the whole budget is cut to the budget, so it runs
once everything else has finished, alone, and is never refused. Waiters are served in arrival
order, so a large reservation is not starved by a stream of small ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ByteBudget:
    """At most ``capacity`` bytes reserved at once (one oversized holder alone may use it all)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def used(self) -> int:
        return self._used

    @contextlib.asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[int]:
        """Reserve ``amount`` bytes (cut to the capacity) for the body; yields what was reserved."""
        amount = max(0, min(amount, self.capacity))
        await self._acquire(amount)
        try:
            yield amount
        finally:
            self._release(amount)

    async def _acquire(self, amount: int) -> None:
        if not self._waiters and self._used + amount <= self.capacity:
            self._used += amount
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (amount, granted)
        self._waiters.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(amount)  # granted just before the cancellation: hand it on
            else:
                self._waiters.remove(entry)
                self._wake()  # the head may have been what held the others back
            raise

    def _release(self, amount: int) -> None:
        self._used -= amount
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._used + self._waiters[0][0] <= self.capacity:
            amount, granted = self._waiters.popleft()
            self._used += amount
            granted.set_result(None)
