"""Assemble the processors pipeline from the settings object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

import structlog

from model_store.quality.scoring import (
    BackgroundScoreTable,
    PositionScoreConfig,
    ScoringConfig,
    TotalWeights,
    VisualScoreConfig,
)
from model_store.registry import ModelRegistry, RegistryError
from processors.embedding import TorchEmbedder
from processors.inference import QualityScorer
from processors.intake import ImageIntake
from processors.label_store import LabelStore, labels_collection
from processors.pipeline import EnrichmentPipeline
from processors.vector_index import VectorIndex, alias_name, collection_name
from streams.settings import Settings

log = structlog.get_logger("catalog.pipeline")


def scoring_config(settings: Settings) -> ScoringConfig:
    """The quality scoring rules (background table, position formula, weights) from the settings."""
    table = settings.quality_background_table
    return ScoringConfig(
        background_table=BackgroundScoreTable(table) if table is not None else BackgroundScoreTable(),
        position=PositionScoreConfig(**settings.quality_position),
        weights=TotalWeights(**settings.quality_weights),
        visual=VisualScoreConfig(**settings.quality_visual_weights),
    )


def build_quality(settings: Settings) -> QualityScorer | None:
    """The three quality models, or None when they are off (or absent in ``auto`` mode)."""
    if settings.quality_mode == "off":
        return None
    from model_store.quality.scorer import DEFAULT_REFS, QualityModels

    scoring = scoring_config(settings)
    try:
        overrides = cast(Mapping[str, str], settings.quality_models)  # its keys are the Literal roles
        registry = ModelRegistry(settings.registry_dir) if settings.registry_dir is not None else None
        models = QualityModels.load(registry=registry, refs={**DEFAULT_REFS, **overrides}, scoring=scoring)
        models = replace(models.to(settings.device), max_forward_batch=settings.forward_batch())
        return models.as_graphs() if settings.cpu_graphs else models
    except (RegistryError, FileNotFoundError) as exc:
        if settings.quality_mode == "on":
            raise
        log.warning("quality_models_unavailable", error=str(exc), hint="quality stays null in ImageEnriched")
        return None


def build_index(settings: Settings, embedder: TorchEmbedder) -> VectorIndex:
    """The gallery of ``embedder``'s model, addressed through the deployment's alias."""
    config = settings.index_config()
    collection = collection_name(config.collection_prefix, embedder.model_id, embedder.model_version)
    return VectorIndex(config, collection, embedder.dim, alias=alias_name(config.collection_prefix))


def build_label_store(settings: Settings, index: VectorIndex) -> LabelStore:
    return LabelStore(index, labels_collection(settings.milvus_collection_prefix))


def build_pipeline(settings: Settings, upsert: bool = True) -> EnrichmentPipeline:
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    index = build_index(settings, embedder)
    quality = build_quality(settings)
    return EnrichmentPipeline(
        settings.pipeline_config(upsert=upsert),
        ImageIntake(settings.intake_config(shrink_to=served_input_size(embedder, quality))),
        embedder,
        index,
        quality=quality,
        labels=build_label_store(settings, index),
    )


def served_input_size(embedder: TorchEmbedder, quality: QualityScorer | None) -> int:
    """The largest square input any served model takes: intake shrinks images on load to (twice) this."""
    return max(embedder.image_size, quality.input_size if quality is not None else 0)
