"""Milvus Lite's search hits read from per-segment column caches, without vectors nobody asked for.

Why: Milvus Lite 3.x builds every search hit with ``Segment.row_to_dict``, which boxes each column of
the row as an Arrow scalar and converts it (``table.column(name)[i].as_py()``), the embedding's floats
included, though the search then answers only the fields it was asked for. A worker's search of 256
queries with k=21 materialises 5,376 rows; profiled in the worker's Lite child under a stream, that was
about a quarter of the child's CPU (``docs/operations.md#milvus-lite-row-cache``). Two changes, both
invisible in what Lite answers:

- a sealed segment's Arrow table never changes, so its columns are converted once, on the first hit,
  and rows then read Python lists (scalars) or one NumPy row (float vectors, a view of the segment's
  own buffer when the column is one chunk, as Lite loads it);
- inside a search whose ``output_fields`` are listed, rows leave out the float-vector columns the list
  does not name: the search's projection would drop them anyway.

Installed only in the Lite child this project starts, and only on the Lite versions it was checked
against (``tests/integration/test_milvus_lite_rows.py`` compares searches and queries with Lite's own
code); any other version keeps Lite's own code.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import pyarrow as pa

CHECKED_VERSIONS = frozenset({"3.2.2"})
CACHED_SEGMENTS = 64  # live tables kept converted at most; a gallery's sealed segments are far fewer


class _Column(NamedTuple):
    name: str
    value: Callable[[int], Any]  # row -> what ``column[row].as_py()`` gives
    float_vector: bool  # left out of a row when the search did not ask for it


def _column(name: str, column: pa.ChunkedArray) -> _Column:
    kind = column.type
    if pa.types.is_fixed_size_list(kind) and pa.types.is_float32(kind.value_type) and column.null_count == 0:
        whole = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()  # one chunk: no copy
        matrix = whole.flatten().to_numpy(zero_copy_only=False).reshape(-1, kind.list_size)
        return _Column(name, lambda row: matrix[row].tolist(), True)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _Column(name, lambda row: column[row].as_py(), False)  # other nested values: per row, as Lite does
    return _Column(name, column.to_pylist().__getitem__, False)


class _ColumnCache:
    """Converted columns of the most recently hit segments, keyed by the identity of their Arrow table.

    An entry goes when Lite drops its table (a compaction replaced the segment): the cache holds the
    table only weakly, so it never keeps a replaced segment's data alive.
    """

    def __init__(self, capacity: int = CACHED_SEGMENTS) -> None:
        self.capacity = capacity
        self._tables: collections.OrderedDict[int, tuple[weakref.ref[pa.Table], list[_Column]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.RLock()  # Lite serves gRPC calls from a thread pool

    def __len__(self) -> int:
        return len(self._tables)

    def columns(self, table: pa.Table) -> list[_Column]:
        key = id(table)
        with self._lock:
            hit = self._tables.get(key)
            if hit is not None and hit[0]() is table:
                self._tables.move_to_end(key)
                return hit[1]
        columns = [_column(name, table.column(name)) for name in table.schema.names if name != "_seq"]
        with self._lock:
            self._tables[key] = (weakref.ref(table, functools.partial(self._forget, key)), columns)
            self._tables.move_to_end(key)
            while len(self._tables) > self.capacity:
                self._tables.popitem(last=False)
        return columns

    def _forget(self, key: int, ref: weakref.ref[pa.Table]) -> None:
        with self._lock:
            hit = self._tables.get(key)
            if hit is not None and hit[0] is ref:
                del self._tables[key]


class _SearchScope(threading.local):
    """The fields the search running on this thread answers (None: not in a search, or it wants all)."""

    wanted: frozenset[str] | None = None


_scope = _SearchScope()


def row_to_dict(columns: list[_Column], row: int, wanted: frozenset[str] | None = None) -> dict[str, Any]:
    """``Segment.row_to_dict``'s answer (every column but ``_seq``, then ``$meta``'s JSON on top), less
    the float vectors outside ``wanted`` when it is given."""
    result = {c.name: c.value(row) for c in columns if wanted is None or not c.float_vector or c.name in wanted}
    meta = result.get("$meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = None
    if isinstance(meta, dict):
        result.update(meta)
    return result


def _scoped(search: Callable[..., Any]) -> Callable[..., Any]:
    """``execute_search_with_index`` that tells ``row_to_dict`` which fields its answer keeps."""

    def search_with_scope(*args: Any, **kwargs: Any) -> Any:
        fields = kwargs.get("output_fields")
        if fields is None or "*" in fields or "pk_field" not in kwargs:
            return search(*args, **kwargs)
        previous, _scope.wanted = _scope.wanted, frozenset(fields) | {kwargs["pk_field"]}
        try:
            return search(*args, **kwargs)
        finally:
            _scope.wanted = previous

    search_with_scope.catalog_scoped = True  # type: ignore[attr-defined]
    return search_with_scope


def install(version: str) -> bool:
    """Patch this process's Milvus Lite when ``version`` is one checked here; True if it is patched."""
    if version not in CHECKED_VERSIONS:
        return False
    from milvus_lite.engine import collection
    from milvus_lite.storage.segment import Segment

    if getattr(collection.execute_search_with_index, "catalog_scoped", False):
        return True
    cache = _ColumnCache()

    def cached_row_to_dict(self: Any, row_idx: int) -> dict[str, Any]:
        return row_to_dict(cache.columns(self.table), row_idx, _scope.wanted)

    Segment.row_to_dict = cached_row_to_dict
    collection.execute_search_with_index = _scoped(collection.execute_search_with_index)
    return True
