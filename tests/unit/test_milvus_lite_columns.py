"""The Lite row cache's pure parts: rows as Lite builds them, a bounded cache."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
from milvus_lite.storage.segment import Segment

from streams.milvus_lite_rows import _ColumnCache, row_to_dict

LITES_ROW_TO_DICT = Segment.row_to_dict  # as imported: the row cache is installed only in the Lite child


def _table(n: int = 6) -> pa.Table:
    vectors = np.arange(n * 4, dtype=np.float32).reshape(n, 4) / 3
    return pa.table(
        {
            "product_id": [f"p{i}" for i in range(n)],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 4),
            "tags": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
            "score": pa.array([None if i == 2 else i / 7 for i in range(n)], pa.float32()),
            "$meta": ['{"colour": "red"}', None, "not json", '{"size": 2}', "[1]", "{}"][:n],
            "_seq": list(range(n)),
        }
    )


def _lites_row(table: pa.Table, row: int) -> dict:
    """What Milvus Lite's own ``Segment.row_to_dict`` returns, on a segment over ``table``."""
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    pks = table.column("product_id").to_pylist()
    segment = Segment("unused.parquet", "_default", "product_id", "embedding", pks, np.arange(len(pks)), vectors, table)
    return LITES_ROW_TO_DICT(segment, row)


def test_rows_are_lites_rows_and_vectors_drop_only_when_not_wanted() -> None:
    table = _table()
    columns = _ColumnCache().columns(table)
    for row in range(table.num_rows):
        assert row_to_dict(columns, row) == _lites_row(table, row)
        narrow = row_to_dict(columns, row, frozenset({"product_id", "score"}))
        assert "embedding" not in narrow and narrow["tags"] == [row, row + 1]  # only float vectors are left out
        assert row_to_dict(columns, row, frozenset({"embedding"}))["embedding"] == _lites_row(table, row)["embedding"]


def test_the_cache_is_bounded_and_keyed_by_the_table_itself() -> None:
    cache = _ColumnCache(capacity=2)
    tables = [_table(3) for _ in range(3)]
    first = cache.columns(tables[0])
    assert cache.columns(tables[0]) is first
    cache.columns(tables[1])
    cache.columns(tables[2])
    assert len(cache) == 2
    assert cache.columns(tables[0]) is not first  # evicted, converted again


def test_a_table_lite_dropped_leaves_the_cache() -> None:
    cache = _ColumnCache()
    kept, dropped = _table(3), _table(3)
    cache.columns(kept)
    cache.columns(dropped)
    assert len(cache) == 2
    del dropped  # a compaction replaced the segment: nothing but the cache saw its table
    gc.collect()
    assert len(cache) == 1
