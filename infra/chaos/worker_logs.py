"""What each worker of a failed scenario said about its group and its errors, for the failure message.

Why: a scenario that fails in CI leaves its logs on a machine nobody can read afterwards; the
group's story (joins, assignments, revocations, warnings) in the message is what tells a stuck
rebalance from a stuck batch.
"""

from __future__ import annotations

import json
from pathlib import Path

_GROUP_WORDS = ("assigned partitions", "joined group", "joining group", "resuming flow", "signal received")
_LOUD_LEVELS = {"warning", "error", "critical", "raw"}


def _entry(raw: str) -> dict[str, object] | None:
    """A structlog JSON line, or a plain line that reads like an error (a traceback's); None for the rest."""
    try:
        entry = json.loads(raw)
    except ValueError:
        lowered = raw.lower()
        return {"event": raw, "level": "raw"} if any(w in lowered for w in ("error", "traceback")) else None
    return entry if isinstance(entry, dict) else None


def _worth_showing(entry: dict[str, object]) -> bool:
    """A line about the group (faust's and aiokafka's own words) or one at warning level and above."""
    event = str(entry.get("event", "")).lower()
    level = str(entry.get("level", "")).lower()
    return level in _LOUD_LEVELS or any(w in event for w in _GROUP_WORDS)


def _render(name: str, entry: dict[str, object], width: int) -> str:
    """One line: worker, time, level, event, and the exception's last line when structlog logged one."""
    stamp = str(entry.get("timestamp", ""))[11:23]
    text = str(entry.get("event", ""))[:width]
    exception = str(entry.get("exception", "")).strip()
    if exception:
        text += f" ({exception.splitlines()[-1]})"
    return " ".join(part for part in (name, stamp, f"{entry.get('level', '?')}:", text) if part)


def group_story(workdir: Path, per_worker: int = 15, width: int = 300) -> list[str]:
    """The last ``per_worker`` group or warning lines of each ``worker-*.log`` under ``workdir``."""
    story: list[str] = []
    for log in sorted(workdir.glob("worker-*.log")):
        name = log.stem.removeprefix("worker-")
        shown: list[str] = []
        for raw in log.read_text(errors="replace").splitlines():
            entry = _entry(raw)
            if entry is not None and _worth_showing(entry):
                shown.append(_render(name, entry, width))
        story.extend(shown[-per_worker:] or [f"{name}: nothing about its group in {log}"])
    return story
