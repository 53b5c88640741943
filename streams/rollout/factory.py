"""Build a ``PartitionReindexer`` for an activation from the settings object."""

from __future__ import annotations

import dataclasses

from processors.embedding import TorchEmbedder
from processors.errors import ConfigurationError
from processors.intake import ImageIntake
from processors.label_store import LabelStore, labels_collection
from processors.vector_index import VectorIndex
from streams.activation import open_registry
from streams.events import ModelActivated
from streams.kafka_clients import reindex_consumer
from streams.rollout.metrics import ReindexMetrics
from streams.rollout.offsets import reindex_group_id
from streams.rollout.reindexer import PartitionReindexer, ReindexParts
from streams.settings import Settings

WEIGHTS_FILE = "weights.pt"


def check_weights(settings: Settings, activation: ModelActivated) -> None:
    """The registry's weights must be those the activation pinned (the loader checks the file against the manifest)."""
    registry = open_registry(settings)
    if not registry.exists(activation.model_ref):
        return  # a builtin: the loader builds it in code (activations refuse builtins before this)
    pinned = registry.load_manifest(activation.model_ref).files.get(WEIGHTS_FILE)
    if pinned != activation.sha256:
        raise ConfigurationError(
            "checksum_mismatch",
            f"{activation.model_ref}: the registry's weights are {pinned}, the activation pinned {activation.sha256}",
            stage="reindex",
        )


def build_reindexer(
    settings: Settings,
    activation: ModelActivated,
    previous_collection: str | None = None,
    metrics: ReindexMetrics | None = None,
    embedder: TorchEmbedder | None = None,
    poll_timeout_ms: int = 200,
) -> PartitionReindexer:
    """The re-indexer of ``activation``: its model, its collection, its own Milvus connection and group.

    ``previous_collection`` (the collection the workers serve now) is read for each product's
    stored label and quality score; ``embedder`` lets a worker pass the new model it already loaded.
    Nothing connects until ``start()``.
    """
    if embedder is None:
        check_weights(settings, activation)
        config = dataclasses.replace(settings.embedder_config(), model_ref=activation.model_ref)
        embedder = TorchEmbedder.from_config(config)
    index_config = settings.index_config()
    index = VectorIndex(index_config, activation.collection, embedder.dim)  # no alias: the switch moves it
    previous = None
    if previous_collection and previous_collection != activation.collection:
        previous = VectorIndex(index_config, previous_collection, embedder.dim)
    parts = ReindexParts(
        embedder=embedder,
        index=index,
        labels=LabelStore(index, labels_collection(settings.milvus_collection_prefix)),
        intake=ImageIntake(settings.intake_config()),
        previous=previous,
    )
    group_id = reindex_group_id(settings.app_id, activation.collection, activation.activated_at)
    return PartitionReindexer(
        settings, group_id, parts, reindex_consumer(settings, group_id), metrics, poll_timeout_ms=poll_timeout_ms
    )
