"""What the vector index costs per micro-batch, and how that grows with the gallery.

Why: per micro-batch the worker makes one batched ``VectorIndex.search`` of the batch's
vectors, one ``fetch`` of the batch's rows (Strong: it decides the write) and one batch
``upsert``. This times exactly those calls, through the same ``VectorIndex`` as the worker, on
each given Milvus (Lite, a server) at each gallery size, so the table says what moving from
Milvus Lite to a server buys at which catalog size.

The gallery is synthetic: L2-normalised Gaussian random vectors of the embedder's dimension,
all labelled ``confirmed`` (so the trusted-label filter keeps all of them). Real embeddings
cluster by category; random unit vectors have no structure, which is the harder case for an
ANN index, so the search figures are if anything pessimistic. Each size gets a collection of
its own, loaded in chunks, flushed, and (on a server) measured only once the index covers
every row; query and upsert vectors are fresh random vectors per batch.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from processors.vector_index import GalleryItem, VectorIndex, VectorIndexConfig, collection_name

LOAD_CHUNK = 10_000
PHASES = ("search", "fetch", "upsert")


@dataclass(frozen=True)
class Target:
    """One Milvus to measure: a name for the table and the index settings (URI, index type...)."""

    name: str
    config: VectorIndexConfig


@dataclass
class SizeResult:
    """One (Milvus, gallery size) cell: load cost, then ms per micro-batch per phase."""

    target: str
    gallery_rows: int
    load_s: float
    load_rows_per_s: float
    index_ready_s: float | None
    ms: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> {median, p95}
    index_settled_s: float | None = None  # None: not settled within the limit, or no index progress reported
    pending_index_rows_at_measure: int | None = None
    index_build: dict[str, Any] = field(default_factory=dict)  # what this backend built the index with

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexBenchReport:
    dim: int
    batch: int
    k: int
    batches: int
    warmup: int
    index_type: str
    index_params: dict[str, dict[str, Any]]  # per target: Milvus Lite and a server build with different defaults
    vectors: str
    results: list[SizeResult]
    skipped: list[str]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["growth"] = growth(self.results)
        return out


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` random unit vectors (float32): Gaussian, then L2-normalised."""
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _items(ids: Sequence[str], vectors: np.ndarray, now_ms: int) -> list[GalleryItem]:
    return [
        GalleryItem(
            product_id=pid,
            embedding=vec,
            category=f"c{hash(pid) % 10}",
            label_source="confirmed",
            seller_id="bench",
            updated_at_ms=now_ms,
        )
        for pid, vec in zip(ids, vectors, strict=True)
    ]


@dataclass(frozen=True)
class SettleLimits:
    """How long Milvus must report no pending index rows before measuring, and the most to wait for it."""

    quiet_s: float = 30.0
    limit_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.quiet_s <= self.limit_s:
            raise ValueError(f"settle: quiet_s ({self.quiet_s}) must lie within [0, limit_s ({self.limit_s})]")


@dataclass(frozen=True)
class IndexWait:
    """How long the index took to cover the gallery, and whether the background work after it settled."""

    ready_s: float | None  # None: the backend reports no index progress
    settled_s: float | None  # None: not quiet for long enough when the settle limit ran out
    pending_rows_at_measure: int | None  # at the last look; 0 with settled_s None: it had only just gone quiet


def _index_info(index: VectorIndex) -> dict[str, Any] | None:
    client = index.client
    try:
        names = client.list_indexes(index.collection)
        return dict(client.describe_index(index.collection, names[0])) if names else {}
    except Exception:  # noqa: BLE001 - a backend that describes no index progress
        return None


def wait_until_indexed(index: VectorIndex, rows: int, timeout: float, settle: SettleLimits) -> IndexWait:
    """Flush, wait until the vector index covers ``rows`` rows, then until the server's background work settles.

    A server builds the index per sealed segment in the background and searches unindexed
    rows by brute force meanwhile; measuring before it is done would time the wrong thing.
    Covering every row is not the end of it: compaction then merges the small load segments
    and re-indexes them, and searches during that ran 2-4x slower (100k rows: 80-180 ms against
    45 ms once ``pending_index_rows`` had stayed 0). So the wait goes on until no row has been
    pending for ``settle.quiet_s``, at most ``settle.limit_s`` (at 1M rows it may not settle;
    the report says so). A backend that reports no index progress is measured at once.
    """
    started = time.perf_counter()
    try:
        index.client.flush(index.collection)
    except Exception:  # noqa: BLE001 - a backend without flush reports no index progress either
        return IndexWait(None, None, None)
    deadline = started + timeout
    ready_s: float | None = None
    while ready_s is None:
        info = _index_info(index)
        if info is None or info.get("indexed_rows") is None:
            return IndexWait(None, None, None)
        if info["indexed_rows"] >= rows:
            ready_s = time.perf_counter() - started
        elif time.perf_counter() >= deadline:
            raise TimeoutError(f"index of {index.collection} did not cover {rows} rows within {timeout:.0f}s")
        else:
            time.sleep(1.0)
    settle_deadline = time.perf_counter() + settle.limit_s
    quiet_since: float | None = None
    while True:
        info = _index_info(index)
        now = time.perf_counter()
        if info is not None and "pending_index_rows" not in info:
            return IndexWait(ready_s, None, None)  # it reports coverage but not what is pending
        pending = None if info is None else int(info["pending_index_rows"])  # None: one failed look, not quiet
        quiet_since = (quiet_since or now) if pending == 0 else None
        if quiet_since is not None and now - quiet_since >= settle.quiet_s:
            return IndexWait(ready_s, now - started, 0)
        if now >= settle_deadline:
            return IndexWait(ready_s, None, pending)
        time.sleep(2.0)


def _wait_text(wait: IndexWait) -> str:
    if wait.ready_s is None:
        return "no index progress reported"
    if wait.settled_s is None:
        pending = wait.pending_rows_at_measure
        state = "none pending, but not for long" if pending == 0 else f"{pending} rows pending"
        return f"index ready after {wait.ready_s:.0f}s, not settled ({state})"
    return f"index ready after {wait.ready_s:.0f}s, settled after {wait.settled_s:.0f}s"


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def measure_size(
    target: Target,
    rows: int,
    dim: int,
    *,
    batch: int = 64,
    k: int = 20,
    batches: int = 20,
    warmup: int = 3,
    seed: int = 0,
    index_timeout: float = 3600.0,
    settle: SettleLimits = SettleLimits(),
    progress: Callable[[str], None] = lambda _m: None,
) -> SizeResult:
    """Load ``rows`` synthetic rows into a fresh collection of ``target``, then time micro-batches."""
    rng = np.random.default_rng(seed)
    name = collection_name(f"bench_{uuid.uuid4().hex[:6]}", f"{rows}", "0")
    index = VectorIndex(target.config, name, dim)
    try:
        index.ensure_collection()
        build = index.index_build()
        now_ms = int(time.time() * 1000)
        started = time.perf_counter()
        for start in range(0, rows, LOAD_CHUNK):
            n = min(LOAD_CHUNK, rows - start)
            ids = [f"g{i}" for i in range(start, start + n)]
            index.upsert(_items(ids, unit_vectors(rng, n, dim), now_ms))
            if (start // LOAD_CHUNK) % 10 == 9:
                progress(f"{target.name}: {start + n:,}/{rows:,} rows in {time.perf_counter() - started:.0f}s")
        load_s = time.perf_counter() - started
        progress(f"{target.name}: {rows:,} rows loaded in {load_s:.0f}s; flushing, waiting for the index")
        wait = wait_until_indexed(index, rows, index_timeout, settle)
        progress(f"{target.name}: {_wait_text(wait)}; measuring")
        samples: dict[str, list[float]] = {phase: [] for phase in (*PHASES, "search+upsert", "batch")}
        trusted = {"confirmed"}
        for b in range(warmup + batches):
            queries = unit_vectors(rng, batch, dim)
            ids = [f"new-{b}-{i}" for i in range(batch)]  # new products, as uploads mostly are
            items = _items(ids, unit_vectors(rng, batch, dim), now_ms)
            t0 = time.perf_counter()
            found = index.search(queries, k, trusted)
            t1 = time.perf_counter()
            index.fetch(ids)
            t2 = time.perf_counter()
            index.upsert(items)
            t3 = time.perf_counter()
            if len(found) != batch or any(len(hits) != k for hits in found):
                raise RuntimeError(f"{target.name} at {rows} rows returned a short result: the timing would lie")
            if b >= warmup:
                for phase, seconds in (
                    ("search", t1 - t0),
                    ("fetch", t2 - t1),
                    ("upsert", t3 - t2),
                    ("search+upsert", (t1 - t0) + (t3 - t2)),
                    ("batch", t3 - t0),
                ):
                    samples[phase].append(seconds * 1000)
        try:
            index.client.drop_collection(name)
        except Exception as exc:  # Milvus Lite 3.2 failed here once at 1M rows (a missing index file)
            progress(f"{target.name}: could not drop {name}: {exc}")
    finally:
        index.close()
    return SizeResult(
        target=target.name,
        gallery_rows=rows,
        load_s=round(load_s, 1),
        load_rows_per_s=round(rows / load_s, 1),
        index_ready_s=None if wait.ready_s is None else round(wait.ready_s, 1),
        index_settled_s=None if wait.settled_s is None else round(wait.settled_s, 1),
        pending_index_rows_at_measure=wait.pending_rows_at_measure,
        ms={phase: _percentiles(values) for phase, values in samples.items()},
        index_build=build,
    )


def growth(results: Sequence[SizeResult]) -> dict[str, list[dict[str, Any]]]:
    """Per Milvus: median search+upsert at each size relative to the smallest size measured."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in dict.fromkeys(r.target for r in results):
        mine = sorted((r for r in results if r.target == name), key=lambda r: r.gallery_rows)
        base = mine[0].ms["search+upsert"]["median"]
        out[name] = [
            {
                "gallery_rows": r.gallery_rows,
                "search_upsert_ms": r.ms["search+upsert"]["median"],
                "x_smallest": round(r.ms["search+upsert"]["median"] / base, 2) if base else None,
            }
            for r in mine
        ]
    return out


def run_index_benchmark(
    targets: Sequence[Target],
    sizes: Sequence[int],
    dim: int,
    *,
    batch: int = 64,
    k: int = 20,
    batches: int = 20,
    warmup: int = 3,
    settle: SettleLimits = SettleLimits(),
    skip: Callable[[Target, int, Sequence[SizeResult]], str | None] = lambda _t, _n, _r: None,
    progress: Callable[[str], None] = lambda _m: None,
    on_result: Callable[[SizeResult], None] = lambda _r: None,
) -> IndexBenchReport:
    """Every target at every size in one run; ``skip`` may decline a cell (with a reason), given the results so far."""
    results: list[SizeResult] = []
    skipped: list[str] = []
    for target in targets:
        for rows in sizes:
            reason = skip(target, rows, results)
            if reason:
                skipped.append(f"{target.name} at {rows:,} rows: {reason}")
                progress(skipped[-1])
                continue
            progress(f"{target.name}: loading {rows:,} rows")
            result = measure_size(
                target, rows, dim, batch=batch, k=k, batches=batches, warmup=warmup, settle=settle, progress=progress
            )
            results.append(result)
            progress(_row(result))
            on_result(result)
    first = targets[0].config
    return IndexBenchReport(
        dim=dim,
        batch=batch,
        k=k,
        batches=batches,
        warmup=warmup,
        index_type=first.index_type,
        index_params={r.target: r.index_build for r in results},
        vectors="synthetic: L2-normalised Gaussian random unit vectors (no category structure)",
        results=results,
        skipped=skipped,
    )


def with_uri(config: VectorIndexConfig, uri: str, token: str | None = None) -> VectorIndexConfig:
    """The worker's index settings pointed at another Milvus."""
    return replace(config, uri=uri, token=token if token is not None else config.token)


def _row(r: SizeResult) -> str:
    m = r.ms
    return (
        f"{r.target:<8} {r.gallery_rows:>9,} | {m['search']['median']:>8.1f} {m['search']['p95']:>8.1f} | "
        f"{m['upsert']['median']:>8.1f} {m['upsert']['p95']:>8.1f} | "
        f"{m['search+upsert']['median']:>8.1f} {m['search+upsert']['p95']:>8.1f} | "
        f"{m['fetch']['median']:>7.1f} | {r.load_rows_per_s:>9,.0f}"
    )


def format_table(report: IndexBenchReport) -> Iterator[str]:
    """The human table: ms per micro-batch (median / p95) per phase, then growth with the gallery."""
    yield (
        f"ms per micro-batch of {report.batch} ({report.index_type}, dim {report.dim}, k {report.k}; "
        f"median and p95 over {report.batches} batches after {report.warmup} warm-up)"
    )
    yield f"gallery: {report.vectors}"
    yield (
        f"{'milvus':<8} {'rows':>9} | {'search':>8} {'p95':>8} | {'upsert':>8} {'p95':>8} | "
        f"{'srch+ups':>8} {'p95':>8} | {'fetch':>7} | {'load r/s':>9}"
    )
    for result in report.results:
        yield _row(result)
    for line in report.skipped:
        yield f"skipped: {line}"
    yield "growth of search+upsert (median) with the gallery, relative to the smallest size:"
    for name, steps in growth(report.results).items():
        yield f"  {name}: " + ", ".join(f"{s['gallery_rows']:,} rows {s['x_smallest']}x" for s in steps)
