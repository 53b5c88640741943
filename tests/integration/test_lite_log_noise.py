"""Opening a Milvus Lite file in process logs no error for the call Lite does not implement."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import DataType, MilvusClient

from streams.logging_setup import configure_logging


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture()
def grpc_records(logging_restored: None) -> Iterator[_Records]:
    """What gRPC's server logged, filtered or not: proves the noise was there to drop."""
    records = _Records()
    logger = logging.getLogger("grpc._server")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


def test_creating_an_indexed_collection_on_lite_logs_no_error(
    grpc_records: _Records, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)  # in the test: pytest replaces stderr after a fixture's set-up
    configure_logging("INFO", json_lines=True)
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
    assert any("Method not implemented!" in m for m in grpc_records.messages), "Lite no longer refuses the call"
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert [line for line in lines if line["level"] in {"error", "critical"}] == []
