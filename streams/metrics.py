"""Prometheus metrics of one worker, on its own registry so tests and apps never share state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from streams.health import HealthState
from streams.health import serve as serve_http

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_in = Counter("catalog_events_in", "Events consumed", ["topic"], registry=r)
        self.events_out = Counter("catalog_events_out", "Events produced", ["topic"], registry=r)
        self.dead_lettered = Counter("catalog_dead_lettered", "Events dead-lettered", ["error_code"], registry=r)
        self.transient_retries = Counter(
            "catalog_transient_retries",
            "Batches retried after a transient failure",
            ["error_code"],
            registry=r,
        )
        self.labels_applied = Counter("catalog_labels_applied", "Confirmed labels written to the gallery", registry=r)
        self.labels_pending = Gauge(
            "catalog_labels_pending", "Labels held until their image arrives (kept in the label store)", registry=r
        )
        self.internal_errors = Counter(
            "catalog_internal_errors", "Events dead-lettered because handling them hit a bug", ["stage"], registry=r
        )
        self.output_dropped = Counter(
            "catalog_output_dropped",
            "Outputs Kafka refused even as the smallest dead letter",
            ["error_code"],
            registry=r,
        )
        self.batches_in_flight = Gauge(
            "catalog_batches_in_flight",
            "Image batches between intake and their acks (at most CATALOG_PIPELINE_IN_FLIGHT)",
            registry=r,
        )
        self.batches_overlapped = Counter(
            "catalog_batches_overlapped", "Image batches started while an earlier one was still in flight", registry=r
        )
        self.batch_size = Histogram("catalog_batch_size", "Events per micro-batch", buckets=_BATCH_BUCKETS, registry=r)
        self.stage_seconds = Histogram(
            "catalog_stage_seconds",
            "Per-stage latency of a micro-batch",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "catalog_model_inference_seconds",
            "Embedding model time per batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.models = Info("catalog_models", "Registry refs of the models this worker serves", registry=r)
        self.consumer_lag = Gauge(
            "catalog_consumer_lag",
            "Records of an owned partition not yet committed by the worker's group (high watermark - commit)",
            ["topic", "partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "catalog_assigned_partitions",
            "Partitions this worker's consumer owns now, per topic (a rebalance moves them)",
            ["topic"],
            registry=r,
        )

    def observe_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_seconds.labels(stage=stage).observe(ms / 1000.0)
        if "embed" in timings_ms:
            self.inference_seconds.observe(timings_ms["embed"] / 1000.0)

    def serve(self, host: str, port: int, health: HealthState | None = None) -> HealthState:
        """Expose /metrics, /healthz and /readyz; the host defaults to loopback in the settings."""
        health = health or HealthState()
        serve_http(host, port, self.registry, health)
        return health
