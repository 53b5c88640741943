"""`catalog models import`: the command that promotes a training run's versions into the served registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model_store.registry import ModelRegistry
from streams.cli import build_parser


def main(argv: list[str]) -> int:
    """The command as ``catalog`` parses and runs it, without re-pointing the process's logging at pytest's capture."""
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


def _save(registry: ModelRegistry, name: str, version: str, parents: list[str]) -> None:
    registry.save(name, version, {"w": torch.arange(4.0)}, {"parents": parents, "command": "python -m x"})


def test_import_reports_what_it_copied_and_the_lineage_left_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, shipped = ModelRegistry(tmp_path / "runs"), ModelRegistry(tmp_path / "shipped")
    _save(runs, "teacher-a", "4", ["teacher-a@3"])
    _save(runs, "student", "20", ["teacher-a@4"])
    argv = ["models", "import", "student@20", "teacher-a@4", "--from", str(runs.root), "--to", str(shipped.root)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["imported"] == ["student@20", "teacher-a@4"] and out["already_present"] == []
    assert out["parents_not_here"] == {"teacher-a@4": ["teacher-a@3"]}
    assert out["registry_bytes"] == shipped.total_bytes() > 0
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["imported"] == [] and again["already_present"] == ["student@20", "teacher-a@4"]


def test_import_of_a_changed_version_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs, shipped = ModelRegistry(tmp_path / "runs"), ModelRegistry(tmp_path / "shipped")
    _save(runs, "student", "20", [])
    shipped.save("student", "20", {"w": torch.zeros(4)}, {"command": "python -m y"})
    assert main(["models", "import", "student@20", "--from", str(runs.root), "--to", str(shipped.root)]) == 1
    err = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "immutable" in err["error"] and err["imported"] == []
    assert shipped.load_state("student@20")["w"].sum() == 0
