"""Run the worker process: logging, metrics endpoint, topics, then the faust worker."""

from __future__ import annotations

import asyncio

import faust
import structlog

from streams.app import create_app
from streams.logging_setup import configure_logging
from streams.metrics import WorkerMetrics
from streams.settings import Settings
from streams.topics import ensure_topics


def run_worker(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_json)
    log = structlog.get_logger("catalog.run")
    created = asyncio.run(ensure_topics(settings))
    metrics = WorkerMetrics()
    metrics.serve(settings.metrics_host, settings.metrics_port)
    log.info(
        "worker_starting",
        bootstrap=settings.kafka_bootstrap,
        topics_created=created,
        metrics=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        model=settings.model_ref,
    )
    app = create_app(settings, metrics)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()  # blocks; exits the process on SIGTERM/SIGINT
    return 0
