"""Which model a batch's events go to during a rollout, and when an idle partition may switch (pure rules).

docs/rollout.md, "Hand-off, per partition": partition ``p`` switches at a batch boundary, at the
first offset ``w_p`` of ``p`` in the batch that carries it; from then on every event of ``p`` goes
to the new model. A batch never mixes models: it is split into one sub-batch per model, and each
partition's events all land in one of them, in their order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol


class Positioned(Protocol):
    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def first_offsets(events: Iterable[Positioned]) -> dict[int, int]:
    """Per partition, the lowest offset in the batch: where a switch of that partition hands over."""
    first: dict[int, int] = {}
    for e in events:
        if e.partition not in first or e.offset < first[e.partition]:
            first[e.partition] = e.offset
    return first


def next_offsets(events: Iterable[Positioned]) -> dict[int, int]:
    """Per partition, one past the highest offset in the batch."""
    nxt: dict[int, int] = {}
    for e in events:
        nxt[e.partition] = max(nxt.get(e.partition, 0), e.offset + 1)
    return nxt


def split_by_model(events: Sequence[Positioned], switched: Collection[int]) -> tuple[list[int], list[int]]:
    """Indices of the events for the old model and for the new one (switched partitions), order kept."""
    old = [i for i, e in enumerate(events) if e.partition not in switched]
    new = [i for i, e in enumerate(events) if e.partition in switched]
    return old, new


def idle_switch_offset(start: int, end: int, committed: int | None, seen_next: int | None) -> int | None:
    """Where a partition without a batch may switch now: its end offset, if nothing below it is still unseen.

    ``committed`` is the worker group's commit (everything below it is published; without one the
    consumer starts at the log's ``start``), ``seen_next`` one past the highest offset this worker
    has routed since it owns the partition. If either reaches the log's end, no event below ``end``
    can still arrive for the old model, and the next event (offset >= ``end``) goes to the new one.
    None: an event may still be on its way.
    """
    done = max(start if committed is None else committed, -1 if seen_next is None else seen_next)
    return end if done >= end else None
