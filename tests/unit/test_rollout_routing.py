"""Pure rules of the worker's rollout: split a batch by model, where a partition hands over, when an idle one may."""

from __future__ import annotations

from dataclasses import dataclass

from streams.rollout.routing import first_offsets, idle_switch_offset, next_offsets, split_by_model
from streams.rollout.validation import Refusal, check_dimension


@dataclass(frozen=True)
class Ev:
    partition: int
    offset: int


BATCH = [Ev(0, 10), Ev(1, 5), Ev(0, 11), Ev(2, 7), Ev(1, 6), Ev(0, 12)]


def test_first_and_next_offsets_per_partition() -> None:
    assert first_offsets(BATCH) == {0: 10, 1: 5, 2: 7}
    assert next_offsets(BATCH) == {0: 13, 1: 7, 2: 8}
    assert first_offsets([]) == {} and next_offsets([]) == {}


def test_a_batch_splits_into_one_sub_batch_per_model_each_partition_whole_and_in_order() -> None:
    old, new = split_by_model(BATCH, switched={1})
    assert [BATCH[i] for i in new] == [Ev(1, 5), Ev(1, 6)]
    assert [BATCH[i] for i in old] == [Ev(0, 10), Ev(0, 11), Ev(2, 7), Ev(0, 12)]
    assert sorted(old + new) == list(range(len(BATCH)))
    assert split_by_model(BATCH, switched=set()) == (list(range(6)), [])
    assert split_by_model(BATCH, switched={0, 1, 2}) == ([], list(range(6)))


def test_an_idle_partition_switches_at_its_end_only_when_nothing_below_it_can_still_arrive() -> None:
    assert idle_switch_offset(0, end=50, committed=50, seen_next=None) == 50  # all processed and committed
    assert idle_switch_offset(0, end=50, committed=40, seen_next=50) == 50  # all routed, commit not yet written
    assert idle_switch_offset(0, end=50, committed=40, seen_next=45) is None  # 45..49 may be in faust's buffer
    assert idle_switch_offset(0, end=50, committed=None, seen_next=None) is None  # never consumed: all pending
    assert idle_switch_offset(0, end=0, committed=None, seen_next=None) == 0  # a partition nothing was sent to
    assert idle_switch_offset(30, end=30, committed=None, seen_next=None) == 30  # retention emptied it
    assert idle_switch_offset(30, end=31, committed=None, seen_next=None) is None


def test_a_model_of_another_dimension_is_refused() -> None:
    check_dimension("student@17", 256, "student-gamma0@2", 256)
    try:
        check_dimension("student@17", 256, "wide@1", 512)
    except Refusal as refusal:
        assert refusal.reason == "dimension_mismatch"
        assert "512" in refusal.message and "256" in refusal.message
    else:
        raise AssertionError("a 512-dimension model was accepted for a 256-dimension deployment")
