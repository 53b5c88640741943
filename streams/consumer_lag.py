"""Consumer lag per owned partition, as the worker sees it: records not yet committed by its group.

Why here and not only at the broker: an operator (and the alert rules in infra/prometheus)
wants "input waits while nothing comes out" from the same scrape as the worker's other
metrics; ``kafka-consumer-groups.sh --describe`` remains the broker-side view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = structlog.get_logger("catalog.consumer_lag")


class PartitionLag(NamedTuple):
    topic: str
    partition: int
    lag: int


def committed_lag(assignment: set[Any], highwater: Any, committed: Mapping[Any, int | None]) -> list[PartitionLag]:
    """``highwater(tp)`` minus the group's committed offset (the next one to read) per assigned partition.

    A partition without a known high watermark (nothing fetched yet) or without a commit of
    this process yet is left out: a guess would alarm or reassure for no reason.
    """
    out = []
    for tp in sorted(assignment, key=lambda t: (t.topic, t.partition)):
        high, done = highwater(tp), committed.get(tp)
        if high is None or done is None:
            continue
        out.append(PartitionLag(tp.topic, tp.partition, max(0, int(high) - int(done))))
    return out


class GroupCommits:
    """The group's committed offsets as the broker holds them (what ``kafka-consumer-groups.sh`` shows).

    Why the broker and not faust: faust keeps its last commit in a private attribute with no
    public accessor; the group coordinator is the record every consumer and tool agrees on.
    One admin client, opened on first use and kept; a failed read leaves the gauge as it was.
    """

    def __init__(self, group_id: str, make_admin: Callable[[], AIOKafkaAdminClient], timeout_s: float) -> None:
        self.group_id = group_id
        self._make_admin = make_admin
        self._timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None

    async def read(self, partitions: Iterable[Any]) -> dict[tuple[str, int], int | None] | None:
        """Next offset to read per partition (None: no commit yet); None when the broker did not answer."""
        wanted = list(partitions)
        if not wanted:
            return {}
        try:
            found = await asyncio.wait_for(self._list(wanted), self._timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("consumer_lag_read_failed", error=f"{type(exc).__name__}: {exc}")
            await self.close()
            return None
        return {
            (tp.topic, tp.partition): (meta.offset if meta is not None and meta.offset >= 0 else None)
            for tp, meta in found.items()
        }

    async def _list(self, partitions: list[Any]) -> dict[Any, Any]:
        if self._admin is None:
            admin = self._make_admin()
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            self._admin = admin
        return await self._admin.list_consumer_group_offsets(self.group_id, partitions=partitions)

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except (KafkaError, OSError) as exc:
                log.debug("consumer_lag_admin_close_failed", error=str(exc))
