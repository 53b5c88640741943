"""What switching to a model costs, for the Select page's confirmation.

A switch re-embeds every stored row with the new model into a collection of its own (vectors of two
models never mix): the rows to re-embed are the rows of the collection in service now, counted
when Milvus can be read; otherwise the page says why the count is unknown instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_store.registry import WEIGHTS_FILE, Manifest, ModelRegistry
from processors.errors import ProcessingError
from processors.vector_index import collection_name
from streams.console.milvus_access import GalleryUnavailable, lite_session, readonly_index, require_collection
from streams.settings import Settings


@dataclass(frozen=True)
class RowCount:
    rows: int | None
    why_unknown: str | None = None


@dataclass(frozen=True)
class SwitchCost:
    collection: str  # the new model's collection
    collection_rows: RowCount  # rows already there (0 when it does not exist yet)
    active_collection: str
    rows_to_reembed: RowCount
    weights_bytes: int
    embed_dim: int | None
    already_active: bool


def _collection_of(settings: Settings, ref: str) -> str:
    name, _, version = ref.partition("@")
    return collection_name(settings.milvus_collection_prefix, name, version)


def count_rows(settings: Settings, collections: list[str]) -> list[RowCount]:
    """Rows of each existing collection (0 for a missing one), in one Milvus visit; the reason when unknown."""
    try:
        with lite_session(settings.milvus_uri):
            return [_count(settings, c) for c in collections]
    except GalleryUnavailable as exc:
        return [RowCount(None, exc.message) for _ in collections]


def _count(settings: Settings, collection: str) -> RowCount:
    index = readonly_index(settings.index_config(), collection)
    try:
        require_collection(index)
        return RowCount(index.count())
    except GalleryUnavailable as exc:
        return RowCount(0) if exc.code == "no_collection" else RowCount(None, exc.message)
    except ProcessingError as exc:
        return RowCount(None, f"Milvus did not answer: {exc.message}")
    finally:
        index.close()


def switch_cost(settings: Settings, registry: ModelRegistry, manifest: Manifest, active_ref: str) -> SwitchCost:
    collection = _collection_of(settings, manifest.ref)
    active_collection = _collection_of(settings, active_ref)
    weights = registry.version_dir(manifest.ref) / WEIGHTS_FILE
    dim = manifest.config.get("embed_dim")
    present, to_reembed = count_rows(settings, [collection, active_collection])
    return SwitchCost(
        collection=collection,
        collection_rows=present,
        active_collection=active_collection,
        rows_to_reembed=to_reembed,
        weights_bytes=weights.stat().st_size,
        embed_dim=dim if isinstance(dim, int) else None,
        already_active=manifest.ref == active_ref,
    )
