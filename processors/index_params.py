"""Build and search parameters per Milvus index type.

Why a table: a Milvus server refuses an HNSW index without ``M``/``efConstruction``
("efConstruction out of range"), and Milvus Lite 3.x builds its FAISS HNSW graphs with them too
(``milvus_lite/index/faiss_hnsw.py``, once they reach it: ``wire_build_params``), so every index
type gets explicit defaults that both accept, Milvus Lite some of its own (``LITE_BUILD_DEFAULTS``),
and settings may override any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUILD_DEFAULTS: dict[str, dict[str, Any]] = {
    "FLAT": {},
    "HNSW": {"M": 16, "efConstruction": 200},
    "HNSW_SQ": {"M": 16, "efConstruction": 200, "sq_type": "SQ8"},
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
    "IVF_PQ": {"nlist": 1024, "m": 16, "nbits": 8},
    "AUTOINDEX": {},
}
# Milvus Lite builds an HNSW graph for every segment a flush seals and again for every segment a
# compaction writes (at most 100k rows each, ``milvus_lite.constants.MAX_SEGMENT_ROWS``), in the
# process that serves the searches. On the shipped student's embeddings, 60k rows in one graph,
# efConstruction 100 kept recall@20 (0.9969) and all but 1 of 5,000 category votes of 200 at half the build CPU
# (docs/research/hnsw-efconstruction.json); servers keep 200 (segments of millions of rows, built
# by index nodes). IVF keeps the 128 lists Lite chose itself while it ignored our parameters (its
# segments hold 2,048-100k rows; 1,024 lists would leave nprobe 32 a few % of each segment).
LITE_BUILD_DEFAULTS: dict[str, dict[str, Any]] = {
    "HNSW": {"efConstruction": 100},
    "IVF_FLAT": {"nlist": 128},
    "IVF_SQ8": {"nlist": 128},
}
_GRAPH = frozenset({"HNSW", "HNSW_SQ"})
_INVERTED = frozenset({"IVF_FLAT", "IVF_SQ8", "IVF_PQ"})


def build_params(index_type: str, overrides: Mapping[str, Any] | None = None, lite: bool = False) -> dict[str, Any]:
    """Defaults of ``index_type`` (and Milvus Lite's own when ``lite``) with ``overrides`` on top."""
    kind = index_type.upper()
    lite_defaults = LITE_BUILD_DEFAULTS.get(kind, {}) if lite else {}
    return {**BUILD_DEFAULTS.get(kind, {}), **lite_defaults, **(overrides or {})}


def is_lite_version(server_version: str) -> bool:
    """Milvus Lite, embedded or served over http, answers GetVersion with ``milvus_lite-<version>``."""
    return server_version.startswith("milvus_lite")


def wire_build_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for ``IndexParams.add_index`` in both spellings Milvus reads.

    Why: pymilvus 3 sends each build parameter as a key of its own, which a server reads; Milvus
    Lite 3.2 reads only a ``params`` key holding them as JSON (the older spelling, which a server
    also accepts) and silently builds with its own defaults otherwise.
    """
    return {**params, "params": dict(params)} if params else {}


def search_params(index_type: str, limit: int, ef: int, nprobe: int) -> dict[str, Any]:
    """What one search needs: HNSW's ``ef`` must be at least the result count, IVF takes ``nprobe``."""
    kind = index_type.upper()
    if kind in _GRAPH:
        return {"ef": max(ef, limit)}
    if kind in _INVERTED:
        return {"nprobe": nprobe}
    return {}
