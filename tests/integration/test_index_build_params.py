"""The gallery's vector index is built with the parameters meant for its backend, on Lite and a server.

Why: pymilvus 3 sends build parameters as keys of their own, which Milvus Lite 3.2 ignores (it
reads a ``params`` JSON key), so a setting could be silently dropped; and Milvus Lite builds with
defaults of its own whether it is a file or served over http (the worker's child serves its file
over http). ``describe_index`` reads back what the backend recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from processors.vector_index import VectorIndex
from streams.run import start_lite_process
from streams.settings import Settings
from tests.milvus_backend import MilvusTarget

pytestmark = pytest.mark.integration

BUILD_KEYS = ("M", "efConstruction", "nlist")


def _settings(target: MilvusTarget, tmp_path: Path, **overrides: Any) -> Settings:
    if target.uri is None:
        return Settings(milvus_uri=str(tmp_path / "milvus.db"), **overrides)
    return Settings(
        milvus_uri=target.uri, milvus_token=target.token or None, milvus_collection_prefix=target.prefix, **overrides
    )


def _recorded_build(settings: Settings, name: str) -> dict[str, int]:
    """What the backend says it built with, in whichever spelling it answers (each checked on its own)."""
    index = VectorIndex(settings.index_config(), name, 8)
    try:
        index.ensure_collection()
        info = index.client.describe_index(index.collection, "embedding")
    finally:
        index.close()
    flat = {k: int(info[k]) for k in BUILD_KEYS if k in info}  # a server
    nested = {k: int(v) for k, v in (info.get("params") or {}).items() if k in BUILD_KEYS}  # Milvus Lite
    assert not (flat and nested) or flat == nested, info
    return flat or nested


def test_chosen_build_parameters_reach_the_backend(milvus_target: MilvusTarget, tmp_path: Path) -> None:
    chosen = _settings(milvus_target, tmp_path, milvus_index_params={"M": 8, "efConstruction": 40})
    assert _recorded_build(chosen, "build_chosen") == {"M": 8, "efConstruction": 40}


def test_default_build_parameters_per_backend(milvus_target: MilvusTarget, tmp_path: Path) -> None:
    expected = {"M": 16, "efConstruction": 100 if milvus_target.uri is None else 200}
    assert _recorded_build(_settings(milvus_target, tmp_path), "build_default") == expected


def test_a_lite_file_served_by_the_workers_child_builds_with_lites_defaults(tmp_path: Path) -> None:
    """The worker's own path: its Lite child serves the file over http (``run_worker``), still Lite."""
    file_settings = Settings(milvus_uri=str(tmp_path / "milvus.db"), milvus_index_type="IVF_FLAT")
    lite = start_lite_process(file_settings)
    assert lite is not None
    try:
        served = file_settings.model_copy(update={"milvus_uri": lite.uri})  # as run_worker does
        assert served.milvus_uri.startswith("http://127.0.0.1:")
        assert _recorded_build(served, "build_child") == {"nlist": 128}  # a server's default would be 1,024
    finally:
        lite.stop()
