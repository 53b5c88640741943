"""Prometheus metrics of the re-index, on the registry the caller gives (the worker's, to share /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ReindexMetrics:
    """``catalog_reindex_*``: rows done, failures by code, lag, rate and ETA of this process's partitions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rows = Counter("catalog_reindex_rows", "Rows upserted into the new collection", ["topic"], registry=r)
        self.records = Counter("catalog_reindex_records", "Records consumed by the re-index", ["topic"], registry=r)
        self.superseded = Counter(
            "catalog_reindex_superseded", "Records skipped because a newer one of the product was in the batch",
            registry=r,
        )  # fmt: skip
        self.failed = Counter(
            "catalog_reindex_failed", "Records that could not be re-indexed (skipped, logged)", ["code"], registry=r
        )
        self.lag = Gauge(
            "catalog_reindex_lag", "Records of this process's partitions still to re-index", ["topic"], registry=r
        )
        self.rate = Gauge(
            "catalog_reindex_records_per_second", "Smoothed re-index throughput (records consumed)", registry=r
        )
        self.eta = Gauge("catalog_reindex_eta_seconds", "Lag over the smoothed rate; -1 while unknown", registry=r)
        self.switched = Gauge(
            "catalog_reindex_switched_partitions", "Images partitions of this process served by the new model",
            registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "catalog_reindex_batch_seconds", "Time of one re-index batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.eta.set(-1)
