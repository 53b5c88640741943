"""Which model the running workers serve, read from their ``catalog_models_info`` metric.

Why the metrics page: every worker already exports the refs it serves there, and reading it needs
no new endpoint on the worker. An unreachable URL is reported as such, not as "no model".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings

MODELS_INFO = "catalog_models_info"  # the worker's prometheus_client Info("catalog_models")


@dataclass(frozen=True)
class WorkerReport:
    url: str
    embedder: str | None  # the served embedding model's ref, when the worker answered
    error: str | None = None


def served_embedder(metrics_text: str) -> str | None:
    """The ``embedder`` label of ``catalog_models_info`` in a Prometheus text page; None if absent."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:  # the text format types it as a gauge family named like its sample
            if sample.name == MODELS_INFO and "embedder" in sample.labels:
                return sample.labels["embedder"]
    return None


async def _scrape(client: httpx.AsyncClient, url: str) -> WorkerReport:
    try:
        response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return WorkerReport(url, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    try:
        embedder = served_embedder(response.text)
    except ValueError as exc:  # not a Prometheus page
        return WorkerReport(url, None, f"not a metrics page: {exc}")
    return WorkerReport(url, embedder, None if embedder else "no catalog_models_info on this page")


def metrics_urls(settings: Settings) -> list[str]:
    """The configured worker pages; by default the one a worker with these settings serves."""
    if settings.console_worker_metrics_urls is not None:
        return list(settings.console_worker_metrics_urls)
    host = f"[{settings.metrics_host}]" if ":" in settings.metrics_host else settings.metrics_host
    return [f"http://{host}:{settings.metrics_port}/metrics"]


async def scrape_workers(urls: list[str], timeout_s: float = 2.0) -> list[WorkerReport]:
    """One report per configured URL, fetched concurrently."""
    if not urls:
        return []
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        return list(await asyncio.gather(*(_scrape(client, url) for url in urls)))
