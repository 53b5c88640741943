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

log = structlog.get_logger("catalog.consumer_lag")


class PartitionLag(NamedTuple):
    topic: str
    partition: int
    lag: int


def committed_lag(assignment: set[Any], highwater: Any, committed: Mapping[Any, int | None]) -> list[PartitionLag]:
    """``highwater(tp)`` minus the group's committed offset (the next one to read) per assigned partition.

    A partition without a known high watermark (nothing fetched yet) or without a commit of
    the group yet is left out: a guess would alarm or reassure for no reason. So is one that a
    rebalance took away since ``assignment`` was read (the consumer's own thread can revoke it
    at any moment, and aiokafka's ``highwater`` asserts that a partition is assigned).
    """
    out = []
    for tp in sorted(assignment, key=lambda t: (t.topic, t.partition)):
        try:
            high = highwater(tp)
        except AssertionError:  # "Partition is not assigned": revoked meanwhile
            continue
        done = committed.get(tp)
        if high is None or done is None:
            continue
        out.append(PartitionLag(tp.topic, tp.partition, max(0, int(high) - int(done))))
    return out


class GroupCommits:
    """The group's committed offsets as the broker holds them (what ``kafka-consumer-groups.sh`` shows).

    Why the broker and not faust: faust keeps its last commit in a private attribute with no
    public accessor; the group coordinator is the record every consumer and tool agrees on.
    One admin client, opened on first use and kept. A read that fails, times out or leaves a
    partition out (a group-level error comes back as an empty answer) returns None, drops the
    client, and the caller keeps its last reading. Once closed, it opens no client again.
    """

    def __init__(self, group_id: str, make_admin: Callable[[], AIOKafkaAdminClient], timeout_s: float) -> None:
        self.group_id = group_id
        self._make_admin = make_admin
        self._timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._closed = False

    async def read(self, partitions: Iterable[Any]) -> dict[tuple[str, int], int | None] | None:
        """Next offset to read per partition (None: no commit yet); None when there is no full answer."""
        tps = list(partitions)
        wanted = {(tp.topic, tp.partition) for tp in tps}
        if not wanted:
            return {}
        if self._closed:
            return None
        try:
            found = await asyncio.wait_for(self._list(tps), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure: keep the last reading; a timer must not die
            log.warning("consumer_lag_read_failed", error=f"{type(exc).__name__}: {exc}")
            await self._drop()
            return None
        if found is None:
            return None
        answered = {
            (tp.topic, tp.partition): (meta.offset if meta is not None and meta.offset >= 0 else None)
            for tp, meta in found.items()
        }
        if not wanted <= answered.keys():
            log.warning("consumer_lag_read_failed", error=f"no answer for {sorted(wanted - answered.keys())}")
            await self._drop()
            return None
        return {key: answered[key] for key in wanted}

    async def _list(self, partitions: list[Any]) -> dict[Any, Any] | None:
        if self._admin is None:
            admin = self._make_admin()
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            if self._closed:  # closed while it started: nobody else would close it
                await admin.close()
                return None
            self._admin = admin
        return await self._admin.list_consumer_group_offsets(self.group_id, partitions=partitions)

    async def _drop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken client: nothing more to do
                log.debug("consumer_lag_admin_close_failed", error=str(exc))

    async def close(self) -> None:
        """At shutdown: close the client, and make a read still in flight close the one it opens."""
        self._closed = True
        await self._drop()
