"""Assemble the processors pipeline from the settings object."""

from __future__ import annotations

import structlog

from model_store.quality.scoring import ScoringConfig, TotalWeights, VisualScoreConfig
from model_store.registry import RegistryError
from processors.embedding import TorchEmbedder
from processors.inference import QualityScorer
from processors.intake import ImageIntake
from processors.pipeline import EnrichmentPipeline
from processors.vector_index import VectorIndex, collection_name
from streams.settings import Settings

log = structlog.get_logger("catalog.pipeline")


def build_quality(settings: Settings) -> QualityScorer | None:
    """The three quality models, or None when they are off (or absent in ``auto`` mode)."""
    if settings.quality_mode == "off":
        return None
    from model_store.quality.scorer import QualityModels

    scoring = ScoringConfig(
        weights=TotalWeights(**settings.quality_weights),
        visual=VisualScoreConfig(**settings.quality_visual_weights),
    )
    try:
        return QualityModels.load(scoring=scoring)
    except (RegistryError, FileNotFoundError) as exc:
        if settings.quality_mode == "on":
            raise
        log.warning("quality_models_unavailable", error=str(exc), hint="quality stays null in ImageEnriched")
        return None


def build_pipeline(settings: Settings, upsert: bool = True) -> EnrichmentPipeline:
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    index_config = settings.index_config()
    collection = collection_name(index_config.collection_prefix, embedder.model_id, embedder.model_version)
    index = VectorIndex(index_config, collection, embedder.dim)
    return EnrichmentPipeline(
        settings.pipeline_config(upsert=upsert),
        ImageIntake(settings.intake_config()),
        embedder,
        index,
        quality=build_quality(settings),
    )
