"""A local record of every model activation: who selected which model, when, and where it landed on Kafka.

The models topic is compacted, so after compaction it holds only the latest activation; this JSON-lines
file keeps the history a person asks about ("which model did we serve before, and who switched?"). One
line per published activation, appended only after the broker acknowledged it, so every line names a
real offset. It is an audit trail, not the source of truth: workers follow the topic.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ACTIVATION_LOG_FILE = "activations.jsonl"


@dataclass(frozen=True)
class ActivationLogEntry:
    """One acknowledged activation, as published (``activated_at`` is RFC 3339 text)."""

    model_ref: str
    sha256: str
    collection: str
    activated_at: str
    activated_by: str
    previous_ref: str | None
    topic: str
    partition: int
    offset: int


def append_activation(path: Path, entry: ActivationLogEntry) -> None:
    """Append one line: one ``write`` of a whole line to an O_APPEND file, so concurrent writers never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(entry), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_activations(path: Path) -> list[ActivationLogEntry]:
    """Every entry, oldest first; a missing file is an empty history. A torn or foreign line is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    fields = set(ActivationLogEntry.__dataclass_fields__)
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and set(data) == fields:
            out.append(ActivationLogEntry(**data))
    return out
