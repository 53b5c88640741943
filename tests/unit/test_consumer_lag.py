"""Consumer lag from the high watermark and the group's commit."""

from __future__ import annotations

from typing import NamedTuple

from streams.consumer_lag import PartitionLag, committed_lag


class TP(NamedTuple):
    topic: str
    partition: int


def test_lag_is_highwater_minus_commit_and_unknown_partitions_are_left_out() -> None:
    a, b, c, d = TP("images", 0), TP("images", 1), TP("labels", 0), TP("images", 2)
    high = {a: 120, b: 50, c: 7, d: None}
    committed = {a: 100, b: 50, c: None, d: 3}
    assert committed_lag({d, c, b, a}, high.get, committed) == [
        PartitionLag("images", 0, 20),
        PartitionLag("images", 1, 0),
    ]


def test_a_commit_ahead_of_a_stale_high_watermark_is_no_negative_lag() -> None:
    tp = TP("images", 0)
    assert committed_lag({tp}, {tp: 10}.get, {tp: 12}) == [PartitionLag("images", 0, 0)]


def test_a_partition_revoked_by_a_rebalance_meanwhile_is_left_out() -> None:
    kept, revoked = TP("images", 0), TP("images", 1)

    def highwater(tp: TP) -> int:
        assert tp != revoked, "Partition is not assigned"  # what aiokafka's consumer does
        return 10

    assert committed_lag({kept, revoked}, highwater, {kept: 4, revoked: 2}) == [PartitionLag("images", 0, 6)]
