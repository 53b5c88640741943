"""The Lite row cache answers every read exactly as Milvus Lite's own code does, on a real Lite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import milvus_lite
import numpy as np
import pytest
from milvus_lite.engine import collection as lite_collection
from milvus_lite.server_manager import server_manager_instance
from milvus_lite.storage.segment import Segment
from pymilvus import DataType, MilvusClient

from streams import milvus_lite_process, milvus_lite_rows
from streams.milvus_lite_process import LiteProcessConfig, MilvusLiteProcess

DIM = 16
SOURCES = ("confirmed", "seller", "predicted")


def _row(i: int, vector: np.ndarray, tag: str) -> dict[str, Any]:
    return {
        "product_id": f"p{i}",
        "embedding": vector.tolist(),
        "category": f"c{i % 7}-{tag}",
        "label_source": SOURCES[i % 3],
        "quality_total": float(i) / 7.0,
        "updated_at": i,
        "colour": f"k{i % 5}",  # a dynamic field: Lite keeps it in $meta
    }


def _gallery(client: MilvusClient) -> np.ndarray:
    """Sealed segments, rows growing after them, overwrites and deletes: every source a hit can come from."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("product_id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("category", DataType.VARCHAR, max_length=32)
    schema.add_field("label_source", DataType.VARCHAR, max_length=16)
    schema.add_field("quality_total", DataType.FLOAT)
    schema.add_field("updated_at", DataType.INT64)
    params = client.prepare_index_params()
    params.add_index("embedding", index_type="HNSW", metric_type="COSINE")
    client.create_collection("g", schema=schema, index_params=params)
    vectors = np.random.default_rng(3).standard_normal((400, DIM)).astype(np.float32)
    for start in (0, 150):
        client.upsert("g", [_row(i, vectors[i], "a") for i in range(start, start + 150)])
        client.flush("g")
    client.upsert("g", [_row(i, vectors[i], "b") for i in range(100, 200)])  # overwrites sealed rows
    client.upsert("g", [_row(i, vectors[i], "a") for i in range(300, 400)])
    client.delete("g", ids=[f"p{i}" for i in range(0, 400, 13)])
    client.flush("g")
    client.upsert("g", [_row(i, vectors[i], "c") for i in range(50, 90)])  # growing again
    return vectors


def _settle(path: Path) -> None:
    """Wait for Lite's background compaction and index build.

    A flush hands both to a thread; a search before the index exists scores by brute force, after it by HNSW,
    and the two differ in the last bits of a distance. Reads compared with == must see one state.
    """
    _server, db, _port = server_manager_instance._servers[str(path.resolve())]
    db.get_collection("g")._wait_for_bg(timeout=60)


def _reads(client: MilvusClient, queries: list[list[float]]) -> dict[str, Any]:
    """Searches and queries as the worker, the console and the gallery tools send them."""
    search = {"limit": 21, "search_params": {"metric_type": "COSINE", "params": {"ef": 64}}}
    trusted = 'label_source in ["confirmed", "seller"]'
    return {
        "worker": client.search("g", queries, filter=trusted, output_fields=["category", "label_source"], **search),
        "vectors": client.search("g", queries, output_fields=["embedding", "category"], **search),
        "dynamic": client.search("g", queries, output_fields=["colour", "updated_at"], **search),
        "star": client.search("g", queries, output_fields=["*"], **search),
        "default": client.search("g", queries, **search),
        "query": client.query("g", filter='product_id in ["p1", "p60", "p120", "p350"]', output_fields=["*"]),
        "get": client.get("g", ids=["p2", "p61", "p121", "p351", "p13"]),
    }


def _plain(value: Any) -> Any:
    """pymilvus's answer objects as lists and dicts, so two answers compare with ==."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ in ("SearchResult", "HybridHits", "ExtraList"):
        return [_plain(v) for v in value]
    if type(value).__name__ == "Hit":
        return _plain(value.to_dict())
    return value


def _install_until_the_test_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The row cache in this process; monkeypatch puts Lite's own functions back after the test."""
    monkeypatch.setattr(Segment, "row_to_dict", Segment.row_to_dict)
    monkeypatch.setattr(lite_collection, "execute_search_with_index", lite_collection.execute_search_with_index)
    assert milvus_lite_rows.install(milvus_lite.__version__)


def test_reads_answer_as_lites_own_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MilvusClient(str(tmp_path / "lite.db"))
    try:
        vectors = _gallery(client)
        _settle(tmp_path / "lite.db")
        queries = vectors[[5, 77, 123, 260, 399]].tolist()
        lites_own = _plain(_reads(client, queries))
        _install_until_the_test_ends(monkeypatch)
        patched = _plain(_reads(client, queries))
        patched_again = _plain(_reads(client, queries))  # from the converted columns this time
    finally:
        client.close()
    assert lites_own["worker"][0] and lites_own["vectors"][0][0]["entity"]["embedding"]  # the reads found rows
    assert lites_own["get"] and any("colour" in r for r in lites_own["get"])
    for name in lites_own:
        assert patched[name] == lites_own[name], name
        assert patched_again[name] == lites_own[name], name


def test_the_workers_search_reads_no_vector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MilvusClient(str(tmp_path / "lite.db"))
    _install_until_the_test_ends(monkeypatch)
    rows: list[dict[str, Any]] = []
    lite_rows = milvus_lite_rows.row_to_dict
    monkeypatch.setattr(milvus_lite_rows, "row_to_dict", lambda *a: rows.append(lite_rows(*a)) or rows[-1])
    try:
        vectors = _gallery(client)
        rows.clear()  # writes read rows too (outside a search: whole)
        client.search("g", vectors[:4].tolist(), limit=5, output_fields=["category", "label_source"])
        searched = len(rows)
        client.search("g", vectors[:4].tolist(), limit=5, output_fields=["embedding"])
    finally:
        client.close()
    assert searched > 0 and all("embedding" not in r and "category" in r for r in rows[:searched])
    assert len(rows) > searched and all("embedding" in r for r in rows[searched:])  # asked for: read


def test_an_unchecked_lite_version_keeps_lites_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Segment, "row_to_dict", Segment.row_to_dict)
    before = Segment.row_to_dict
    assert not milvus_lite_rows.install("0.0.1")
    assert Segment.row_to_dict is before


def _search_through_a_child(tmp_path: Path) -> tuple[list[Any], str]:
    """A worker's Lite child on a fresh gallery: one search's hits, and the child's log."""
    lite = MilvusLiteProcess(LiteProcessConfig(data_dir=tmp_path / "milvus.db", log_path=tmp_path / "lite.log")).start()
    try:
        client = MilvusClient(lite.uri)
        _gallery(client)
        hits = client.search("g", [[0.1] * DIM], limit=3, output_fields=["category"])
        client.close()
    finally:
        lite.stop()
    return hits[0], (tmp_path / "lite.log").read_text()


def test_the_worker_child_serves_with_the_row_cache(tmp_path: Path) -> None:
    hits, log = _search_through_a_child(tmp_path)
    assert len(hits) == 3 and all("category" in h["entity"] for h in hits)
    assert log.startswith("row cache: on")


def test_a_row_cache_that_fails_to_load_leaves_lites_code_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(milvus_lite_process, "_ROW_CACHE_FILE", tmp_path / "missing.py")
    hits, log = _search_through_a_child(tmp_path)
    assert len(hits) == 3
    assert log.startswith("row cache: off (FileNotFoundError")
