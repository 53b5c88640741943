"""One registry setting for every model a worker loads: the embedder, the quality models, the re-index check."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_store.embedding_models import UnknownModelError
from model_store.registry import ModelRegistry
from processors.embedding import TorchEmbedder
from streams.activation import build_activation, verified_manifest
from streams.pipeline_factory import build_quality
from streams.rollout.factory import check_weights
from streams.settings import Settings

STUDENT = "student@17"


def test_the_embedder_loads_from_the_configured_registry_and_nowhere_else(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path, model_ref=STUDENT)
    with pytest.raises(UnknownModelError, match=str(tmp_path)):
        TorchEmbedder.from_config(settings.embedder_config())  # the shipped registry has it; this one not yet
    ModelRegistry(tmp_path).import_version(ModelRegistry(), STUDENT)
    assert TorchEmbedder.from_config(settings.embedder_config()).dim == 256


def test_quality_models_and_the_reindex_checksum_read_the_same_registry(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path, quality_mode="on")
    with pytest.raises(Exception, match=str(tmp_path)):
        build_quality(settings)
    shipped = ModelRegistry()
    ModelRegistry(tmp_path).import_version(shipped, STUDENT)
    activation = build_activation(settings, verified_manifest(shipped, STUDENT), "test", None)
    check_weights(settings, activation)  # the copy carries the pinned weights
    tampered = activation.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(Exception, match="checksum_mismatch|pinned"):
        check_weights(settings, tampered)
