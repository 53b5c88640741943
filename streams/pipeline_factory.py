"""Assemble the processors pipeline from the settings object."""

from __future__ import annotations

from processors.embedding import TorchEmbedder
from processors.intake import ImageIntake
from processors.pipeline import EnrichmentPipeline
from processors.vector_index import VectorIndex, collection_name
from streams.settings import Settings


def build_pipeline(settings: Settings, upsert: bool = True) -> EnrichmentPipeline:
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    index_config = settings.index_config()
    collection = collection_name(index_config.collection_prefix, embedder.model_id, embedder.model_version)
    index = VectorIndex(index_config, collection, embedder.dim)
    return EnrichmentPipeline(
        settings.pipeline_config(upsert=upsert), ImageIntake(settings.intake_config()), embedder, index
    )
