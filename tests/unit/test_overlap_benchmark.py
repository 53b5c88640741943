"""The overlap benchmark's pieces that need no model: the paired ratio and the command's input check."""

from __future__ import annotations

import argparse

import pytest

from processors.overlap_benchmark import _paired
from streams.commands.bench_overlap import parse_in_flights


def test_the_paired_ratio_compares_within_a_round_so_a_slow_round_does_not_count_twice() -> None:
    runs = {1: [100.0, 50.0, 100.0], 2: [110.0, 55.0, 120.0]}  # round 2 ran on a loaded machine
    assert _paired(runs) == {1: 1.0, 2: 1.1}


def test_in_flight_values_are_checked_with_a_clear_message() -> None:
    assert parse_in_flights("1,2,3") == [1, 2, 3]
    for bad in ("0,1", "two", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_in_flights(bad)
