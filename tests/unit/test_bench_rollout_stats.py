"""The rollout bench's arithmetic: the longest gap without output, and the models per partition."""

from __future__ import annotations

from infra.bench.rollout import longest_gap_ms, model_runs


def test_longest_gap_counts_the_window_edges() -> None:
    assert longest_gap_ms([1200, 1300, 2900], 1000, 3000) == 1600
    assert longest_gap_ms([], 1000, 3000) == 2000
    assert longest_gap_ms([500, 3500], 1000, 3000) == 2000  # outputs outside the window do not count
    assert longest_gap_ms([1000], 1000, 1000) == 0


def test_model_runs_follow_input_offsets_and_merge_repeats() -> None:
    served = {
        "a": (0, 2, "new@1"), "b": (0, 0, "old@1"), "c": (0, 1, "old@1"), "d": (1, 5, "old@1"),
        "e": (1, 6, "new@1"), "f": (1, 7, "old@1"),
    }  # fmt: skip
    assert model_runs(served) == {0: ["old@1", "new@1"], 1: ["old@1", "new@1", "old@1"]}
