"""The gallery collections of a deployment: which model each serves, and which ones may be dropped.

Old collections are dropped only by an explicit command (``catalog gallery drop``) or by the
retention setting ``CATALOG_ROLLOUT_KEEP_COLLECTIONS`` (0, the default, keeps all), and every drop
is logged. Never dropped: the alias's current target, the active model's collection, the label
store. Retention drops only collections that the activation history places behind the kept ones;
a collection it knows nothing about is left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from pymilvus import MilvusClient

from model_store.activation_log import ActivationLogEntry
from processors.label_store import labels_collection
from processors.vector_index import STRONG, alias_name, collection_name
from streams.events import ModelActivated

log = structlog.get_logger("catalog.rollout")


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    rows: int | None  # None when it could not be counted
    model_ref: str | None  # the registry model whose name and version give this collection name
    alias_target: bool  # the deployment alias points here
    active: bool  # the latest activation (or the default model) serves it


def ref_collection(prefix: str, ref: str) -> str:
    """``student@17`` -> ``<prefix>_student_17``."""
    name, _, version = ref.partition("@")
    return collection_name(prefix, name, version)


def models_by_collection(prefix: str, refs: Iterable[str]) -> dict[str, str]:
    return {ref_collection(prefix, ref): ref for ref in refs}


def protected_collections(prefix: str, alias_target: str | None, active: str | None) -> dict[str, str]:
    """Collections that must never be dropped, with the reason a refusal names."""
    out = {labels_collection(prefix): "it is the label store (trusted labels of every model)"}
    if active:
        out[active] = "it is the collection of the active model"
    if alias_target:
        out[alias_target] = f"the alias {alias_name(prefix)} points to it"
    return out


def drop_refusal(name: str, existing: Collection[str], prefix: str, protected: Mapping[str, str]) -> str | None:
    """Why ``name`` may not be dropped; None when it may."""
    if name not in existing:
        return f"no collection {name!r}"
    if not name.startswith(f"{prefix}_"):
        return f"{name!r} is not a gallery collection of the prefix {prefix!r}"
    if name in protected:
        return f"refusing to drop {name!r}: {protected[name]}"
    return None


def served_history(latest: ModelActivated | None, entries: Sequence[ActivationLogEntry], prefix: str) -> list[str]:
    """Collections in the order models were served, newest first, each once.

    From the activation audit log when there is one (the compacted topic keeps only the latest
    activation), and at least the latest activation and the model it replaced.
    """
    ordered: list[str] = []
    if latest is not None:
        ordered.append(latest.collection)
    for entry in reversed(entries):
        ordered.append(entry.collection)
        if entry.previous_ref:
            ordered.append(ref_collection(prefix, entry.previous_ref))
    if latest is not None and latest.previous_ref:
        ordered.append(ref_collection(prefix, latest.previous_ref))
    return list(dict.fromkeys(ordered))


def retention_victims(
    history: Sequence[str], existing: Collection[str], keep: int, protected: Collection[str]
) -> list[str]:
    """Collections of earlier models beyond the ``keep`` most recent; ``keep`` 0 means keep all.

    ``history[0]`` is the active collection; the next ``keep`` ones are kept for a rollback.
    """
    if keep <= 0:
        return []
    return [name for name in history[1 + keep :] if name in existing and name not in protected]


def count_rows(client: MilvusClient, name: str) -> int | None:
    try:
        client.load_collection(name)
        rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level=STRONG)
        return int(rows[0]["count(*)"])
    except Exception as exc:  # one unreadable collection must not hide the others
        log.warning("collection_count_failed", collection=name, error=str(exc)[:300])
        return None


def alias_target(client: MilvusClient, prefix: str) -> str | None:
    alias = alias_name(prefix)
    if alias not in client.list_aliases().get("aliases", []):
        return None
    return client.describe_alias(alias).get("collection_name")


def list_gallery_collections(
    client: MilvusClient, prefix: str, known_refs: Iterable[str], active: str | None
) -> list[CollectionInfo]:
    """Every collection of the prefix but the label store, with its row count and what it serves."""
    models = models_by_collection(prefix, known_refs)
    target = alias_target(client, prefix)
    labels = labels_collection(prefix)
    names = sorted(n for n in client.list_collections() if n.startswith(f"{prefix}_") and n != labels)
    return [CollectionInfo(n, count_rows(client, n), models.get(n), n == target, n == active) for n in names]


def drop_collection(client: MilvusClient, name: str, reason: str) -> None:
    """Drop one collection, logged with the reason: a drop is never silent."""
    client.drop_collection(name)
    log.warning("collection_dropped", collection=name, reason=reason)


def apply_retention(
    client: MilvusClient,
    prefix: str,
    keep: int,
    latest: ModelActivated,
    entries: Sequence[ActivationLogEntry] = (),
) -> list[str]:
    """After a switch: drop the collections the retention setting no longer keeps; returns their names.

    ``keep`` 0 (the default setting) drops nothing and says so.
    """
    if keep <= 0:
        log.info("retention_keeps_all", hint="CATALOG_ROLLOUT_KEEP_COLLECTIONS=0; drop with catalog gallery drop")
        return []
    existing = set(client.list_collections())
    protected = protected_collections(prefix, alias_target(client, prefix), latest.collection)
    victims = retention_victims(served_history(latest, entries, prefix), existing, keep, protected)
    for name in victims:
        drop_collection(client, name, f"CATALOG_ROLLOUT_KEEP_COLLECTIONS={keep}: older than the kept models")
    return victims
