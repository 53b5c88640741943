"""Move the deployment alias ``<prefix>_gallery`` to a collection: the last step of a rollout.

One ``alter_alias`` call: atomic on a Milvus server, the same call on Milvus Lite. Outside readers
(and a worker that restarts serving the new model alone) then find the new collection.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from pymilvus import MilvusClient

from processors.vector_index import alias_name
from streams.rollout.collections import alias_target
from streams.settings import Settings

log = structlog.get_logger("catalog.rollout")


def point_alias(client: MilvusClient, prefix: str, collection: str) -> str | None:
    """Point the alias at ``collection`` (creating it if missing); returns the collection it pointed to before."""
    alias = alias_name(prefix)
    previous = alias_target(client, prefix)
    if previous == collection:
        return previous
    if previous is None:
        client.create_alias(collection, alias)
    else:
        client.alter_alias(collection, alias)
    log.info("alias_moved", alias=alias, collection=collection, previous=previous)
    return previous


def open_client(settings: Settings) -> MilvusClient:
    """A client of the deployment's Milvus (a Lite file's folder is created as the index does)."""
    config = settings.index_config()
    if "://" not in config.uri:
        Path(config.uri).parent.mkdir(parents=True, exist_ok=True)
    return MilvusClient(uri=config.uri, token=config.token or "")
