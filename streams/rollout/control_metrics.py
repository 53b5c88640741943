"""Prometheus metrics of the worker's rollout controller (the re-index's own are ``ReindexMetrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

_REFUSED_HELP = "Activations this worker refused (it kept serving its model), by reason"


class RolloutMetrics:
    """``catalog_activation_refused_total{reason}``, ``catalog_rollout_in_progress``, switch pauses."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.refused = Counter("catalog_activation_refused", _REFUSED_HELP, ["reason"], registry=r)
        self.in_progress = Gauge(
            "catalog_rollout_in_progress", "1 while this worker re-indexes for an activation and serves two models",
            registry=r,
        )  # fmt: skip
        self.partitions_switched = Counter(
            "catalog_rollout_partitions_switched", "Images partitions this worker handed over to a new model",
            registry=r,
        )  # fmt: skip
        self.switch_pause = Gauge(
            "catalog_rollout_switch_pause_seconds",
            "How long the last partition switch held the image agent (the catch-up of that partition)",
            registry=r,
        )
        self.completed = Counter(
            "catalog_rollouts_completed", "Rollouts this worker finished (alias moved)", registry=r
        )
