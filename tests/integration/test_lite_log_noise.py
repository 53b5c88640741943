"""Opening a Milvus Lite file in process logs no error for the call Lite does not implement."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest
import structlog
from pymilvus import DataType, MilvusClient

from streams.logging_setup import StructlogHandler, configure_logging


@pytest.fixture()
def logs() -> object:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StructlogHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _capture(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Set inside the test: pytest replaces stderr again between a fixture's set-up and the test."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json_lines=True)
    return out


@pytest.mark.usefixtures("logs")
def test_creating_an_indexed_collection_on_lite_logs_no_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stderr = _capture(monkeypatch)
    client = MilvusClient(str(tmp_path / "lite.db"))
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 32})
        client.create_collection("noise", schema=schema, index_params=params)
        client.insert("noise", [{"id": "a", "vector": [0.1] * 8}])
        assert client.has_collection("noise")
    finally:
        client.close()
    errors = [json.loads(line) for line in stderr.getvalue().splitlines() if '"level": "error"' in line]
    assert errors == []


@pytest.mark.usefixtures("logs")
def test_other_grpc_server_errors_still_reach_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = _capture(monkeypatch)
    logging.getLogger("grpc._server").error("Exception calling application: disk full")
    logging.getLogger("grpc._server").error("Exception calling application: Method not implemented!")
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["Exception calling application: disk full"]
