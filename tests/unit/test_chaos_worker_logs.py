"""The group story a failed chaos scenario adds to its message: group lines and warnings, per worker."""

from __future__ import annotations

import json
from pathlib import Path

from infra.chaos.worker_logs import group_story


def _log(path: Path, *lines: dict[str, str] | str) -> None:
    path.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")


def test_keeps_group_lines_and_warnings_of_every_worker_and_drops_the_rest(tmp_path: Path) -> None:
    ts = "2026-12-03T13:04:02.669281Z"
    assigned = "Setting newly assigned partitions {TopicPartition(topic='t.images', partition=2)}"
    _log(
        tmp_path / "worker-w1.log",
        {"event": "[^--Producer]: Starting...", "level": "info", "timestamp": ts},
        {"event": assigned, "level": "info", "timestamp": ts},
        {"event": "Heartbeat failed for group g because it is rebalancing", "level": "warning", "timestamp": ts},
        "Traceback (most recent call last):",
        "    a plain line of no interest",
    )
    _log(tmp_path / "worker-w2.log", {"event": "batch_done", "level": "info", "timestamp": ts})
    story = group_story(tmp_path)
    assert story[0] == f"w1 13:04:02.669 info: {assigned}"
    assert story[1].startswith("w1 13:04:02.669 warning: Heartbeat failed")
    assert story[2] == "w1 raw: Traceback (most recent call last):"
    assert len(story) == 4 and story[3].startswith("w2: nothing about its group")


def test_keeps_only_the_last_lines_of_a_long_log(tmp_path: Path) -> None:
    lines = [{"event": f"Joined group 'g' (generation {i})", "level": "info", "timestamp": ""} for i in range(40)]
    _log(tmp_path / "worker-w1.log", *lines)
    story = group_story(tmp_path, per_worker=3)
    assert [s.rsplit("generation ", 1)[1] for s in story] == ["37)", "38)", "39)"]


def test_an_error_line_shows_its_exception_s_last_line(tmp_path: Path) -> None:
    failed = {
        "event": "batch_failed",
        "level": "error",
        "timestamp": "2026-12-03T13:04:02.669281Z",
        "exception": "Traceback (most recent call last):\n  File ...\nMilvusException: (code=2, message=fail)\n",
    }
    _log(tmp_path / "worker-w1.log", failed)
    assert group_story(tmp_path) == ["w1 13:04:02.669 error: batch_failed (MilvusException: (code=2, message=fail))"]
