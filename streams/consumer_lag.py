"""Consumer lag per owned partition, as the worker sees it: records not yet committed by its group.

Why here and not only at the broker: an operator (and the alert rules in infra/prometheus)
wants "input waits while nothing comes out" from the same scrape as the worker's other
metrics; ``kafka-consumer-groups.sh --describe`` remains the broker-side view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


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
