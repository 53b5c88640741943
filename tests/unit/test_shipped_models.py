"""The committed model versions: all present, checksum-clean, reproducible, small, and wired as defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_store.embedding_models import load_embedding_model
from model_store.quality.scorer import DEFAULT_REFS
from model_store.registry import ModelRegistry
from streams.settings import Settings

SHIPPED = [
    "student@1", "student-gamma0@1", "router@1", "teacher-clothing@1", "teacher-shoes@1", "teacher-bags@1",
    *DEFAULT_REFS.values(), "quality-visual-notwin@1", "quality-background@1",
]  # fmt: skip
MAX_TOTAL_BYTES = 50_000_000


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry()


@pytest.mark.parametrize("ref", SHIPPED)
def test_shipped_version_verifies_and_says_how_to_reproduce_it(registry: ModelRegistry, ref: str) -> None:
    manifest = registry.verify(ref)
    assert manifest.command.startswith("python -m model_store."), manifest.command
    assert manifest.files and all(len(digest) == 64 for digest in manifest.files.values())
    assert manifest.metrics


def test_student_parents_are_the_shipped_teachers(registry: ModelRegistry) -> None:
    parents = registry.load_manifest("student@1").parents
    assert sorted(parents) == ["teacher-bags@1", "teacher-clothing@1", "teacher-shoes@1"]


def test_committed_artifacts_stay_under_the_size_budget(registry: ModelRegistry) -> None:
    assert registry.total_bytes() < MAX_TOTAL_BYTES


def test_the_worker_default_is_the_shipped_student(registry: ModelRegistry) -> None:
    ref = Settings.model_fields["model_ref"].default
    assert ref == "student@1" and registry.exists(ref)
    model = load_embedding_model(ref)
    batch = model.preprocess.normalise_uint8(np.zeros((2, 64, 64, 3), np.uint8))
    with torch.inference_mode():
        out = model.module(batch)
    assert out.shape == (2, model.dim) and torch.isfinite(out).all()
