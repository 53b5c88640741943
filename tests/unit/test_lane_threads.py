"""A batch alone in the models gets every core; lanes side by side share them; the count is per lane thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from processors.lane_threads import LaneThreads, lane_threads_for, models_executor
from streams.settings import Settings


def test_the_threads_of_a_forward_follow_the_lanes_busy_when_it_starts() -> None:
    adaptive = LaneThreads(cores=4, lanes=2)
    assert [adaptive.threads_for_next(busy) for busy in (1, 2, 3)] == [4, 2, 1]
    fixed = LaneThreads(cores=4, lanes=2, adaptive=False)
    assert [fixed.threads_for_next(busy) for busy in (1, 2)] == [2, 2]
    assert LaneThreads(cores=1, lanes=2).threads_for_next(2) == 1
    with pytest.raises(ValueError, match="cores and lanes"):
        LaneThreads(cores=0, lanes=2)


def test_alone_a_lane_runs_on_every_core_and_beside_another_on_its_share() -> None:
    keeper = LaneThreads(cores=2, lanes=2)
    mine = torch.get_num_threads()
    seen: dict[str, int] = {}
    both_in = threading.Barrier(2, timeout=10)

    def alone() -> None:
        seen["alone"] = torch.get_num_threads()

    def side_by_side(name: str) -> None:
        both_in.wait()  # neither leaves before the other is in: both started with the other busy or not yet
        seen[name] = torch.get_num_threads()

    with ThreadPoolExecutor(2) as lanes:
        lanes.submit(keeper.run, alone).result()
        first = lanes.submit(keeper.run, side_by_side, "first")
        second = lanes.submit(keeper.run, side_by_side, "second")
        first.result(), second.result()
    assert seen["alone"] == 2
    assert sorted((seen["first"], seen["second"])) == [1, 2]  # the later of the two started beside a busy lane
    assert torch.get_num_threads() == mine  # the lanes set their own threads' counts, not this one's


def test_the_worker_shares_cores_only_where_it_runs_several_lanes_on_a_cpu() -> None:
    assert Settings(inference_lanes=2, device="cpu").lane_cores() is not None
    assert Settings(inference_lanes=1).lane_cores() is None
    assert Settings(torch_threads=1).lane_cores() is None  # set by hand: one lane, its count kept
    assert Settings(inference_lanes=2, device="cuda").lane_cores() is None
    assert lane_threads_for(1, 2, True) is None and lane_threads_for(2, None, True) is None
    assert isinstance(lane_threads_for(2, 2, False), LaneThreads)


def test_a_models_thread_outside_the_lanes_keeps_its_creators_count_whatever_a_lane_set_last() -> None:
    mine = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        lane = threading.Thread(target=torch.set_num_threads, args=(2,))  # a lane alone in the models
        lane.start()
        lane.join()
        with models_executor(1, "test-models") as pinned:
            assert pinned.submit(torch.get_num_threads).result() == 1
    finally:
        torch.set_num_threads(mine)
