"""Every training recipe runs end to end (a few steps on real Fashion-MNIST) and registers a loadable
version whose manifest names its parents and the command that reproduces it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_store.registry import DEFAULT_ROOT, ModelRegistry

pytestmark = pytest.mark.integration

TINY = ["--epochs", "1", "--samples-per-epoch", "128", "--eval-every", "2", "--threads", "1"]


def _run(registry: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "model_store.distill.train", *args, "--registry", str(registry),
                           "--out", str(out), *TINY], capture_output=True, text=True, timeout=300)  # fmt: skip


def _train(registry: Path, out: Path, *args: str) -> str:
    done = _run(registry, out, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_teacher_and_router_recipes_register_loadable_versions(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    _train(reg, tmp_path / "teachers", "teachers", "--only", "bags", "--version", "7")
    _train(reg, tmp_path / "router", "router", "--version", "7")
    registry = ModelRegistry(reg)
    for ref, outputs in (("teacher-bags@7", 256), ("router@7", 3)):
        manifest = registry.verify(ref)
        state = registry.load_state(ref)
        assert manifest.parents == [] and (registry.version_dir(ref) / "report.png").is_file()
        assert "--registry" not in manifest.command and "--samples-per-epoch 128" in manifest.command
        assert any(t.ndim and t.shape[0] == outputs for t in state.values()), f"{ref}: no layer of width {outputs}"


def test_student_distils_from_the_shipped_teachers(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    for teacher in ("teacher-clothing", "teacher-shoes", "teacher-bags"):
        shutil.copytree(DEFAULT_ROOT / teacher, reg / teacher)
    printed = _train(reg, tmp_path / "student", "student", "--teacher-version", "2", "--version", "5",
                     "--mirror-targets")  # fmt: skip
    assert "registered student@5" in printed
    registry = ModelRegistry(reg)
    manifest = registry.verify("student@5")
    assert manifest.parents == ["teacher-clothing@2", "teacher-shoes@2", "teacher-bags@2"]
    assert manifest.config["mirror_targets"] is True and "--mirror-targets" in manifest.command
    assert 0.0 < manifest.metrics["val_l2"] < 2.0  # unit vectors: 0 is a perfect copy, 2 orthogonal on average
    assert registry.load_state("student@5")
    other = _run(reg, tmp_path / "student", "student", "--teacher-version", "2", "--version", "6", "--mirror-targets",
                 "--gamma", "0", "--resume")  # fmt: skip
    assert other.returncode != 0 and "recipe.gamma: checkpoint 1.0, this run 0.0" in other.stderr, other.stderr[-2000:]
    assert not registry.exists("student@6")
