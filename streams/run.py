"""Run the worker process: logging, health + metrics endpoint, topics, then the faust worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import faust
import structlog

from streams.app import create_app
from streams.faust_config import delivery_summary
from streams.health import HealthState
from streams.log_dedup import RepeatFilter, install
from streams.logging_setup import StructlogHandler, configure_logging, use_structlog_handler
from streams.metrics import WorkerMetrics
from streams.milvus_lite_process import LiteProcessConfig, LiteProcessError, MilvusLiteProcess
from streams.settings import Settings
from streams.startup import EXIT_STARTUP_FAILED, StartupError, ensure_topics_at_startup


class _Worker(faust.Worker):
    """faust's worker, logging through the structlog handler (JSON lines) with the repeat filter on it.

    faust's ``setup_logging`` replaces the root handlers with its own colour-formatted one; this
    hook, called right after, puts the structlog handler back as the only one and installs the
    repeat filter on it. faust still redirects ``sys.stdout``/``sys.stderr`` into logging, so a
    stray print or traceback becomes a JSON line too (``CurrentStderr`` writes past that proxy).
    """

    def __init__(self, *args: Any, log_handler: StructlogHandler, repeat_filter: logging.Filter, **kwargs: Any) -> None:
        self._log_handler = log_handler
        self._repeat_filter = repeat_filter
        super().__init__(*args, **kwargs)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        use_structlog_handler(logger, self._log_handler, level)
        install(self._repeat_filter, logger)


def run_worker(settings: Settings) -> int:
    """Returns the process exit code: 0 after a normal stop, 2 when start-up failed (one log line says why)."""
    log_handler = configure_logging(settings.log_level, settings.log_json)
    repeat_filter = RepeatFilter(settings.log_repeat_window_s)
    install(repeat_filter)  # before faust sets logging up: aiokafka logs during the topic check
    metrics = WorkerMetrics()
    health = metrics.serve(settings.metrics_host, settings.metrics_port, HealthState())
    with contextlib.ExitStack() as stack:  # stops the Lite child on every way out
        try:
            lite = start_lite_process(settings)
            if lite is not None:  # only the address changes: the index asks the backend for Lite's rules
                stack.callback(lite.stop)
                settings = settings.model_copy(update={"milvus_uri": lite.uri})
            created = asyncio.run(ensure_topics_at_startup(settings))
        except StartupError as exc:
            health.startup_error = f"{exc.setting}: {exc.cause}"
            exc.log()
            return EXIT_STARTUP_FAILED
        return _run_faust(settings, created, metrics, health, log_handler, repeat_filter)


def start_lite_process(settings: Settings) -> MilvusLiteProcess | None:
    """The worker's Milvus Lite child, when the URI is a Lite file and ``milvus_lite_process`` is on."""
    if not (settings.milvus_is_lite_file() and settings.milvus_lite_process):
        return None
    data_dir = Path(settings.milvus_uri).resolve()
    config = LiteProcessConfig(
        data_dir=data_dir,
        log_path=data_dir.with_name(data_dir.name + ".server.log"),
        start_timeout_s=settings.startup_timeout_s,
        row_cache=settings.milvus_lite_row_cache,
    )
    try:
        return MilvusLiteProcess(config).start()
    except (LiteProcessError, OSError) as exc:
        raise StartupError("CATALOG_MILVUS_URI", f"Milvus Lite at {data_dir}: {exc}") from exc


def _run_faust(
    settings: Settings,
    created: list[str],
    metrics: WorkerMetrics,
    health: HealthState,
    log_handler: StructlogHandler,
    repeat_filter: RepeatFilter,
) -> int:
    log = structlog.get_logger("catalog.run")
    app = create_app(settings, metrics)
    runtime = app.catalog_runtime  # type: ignore[attr-defined]
    runtime.health = health
    failed: list[StartupError] = []

    def stop_on_startup_failure(error: StartupError) -> None:
        failed.append(error)
        os.kill(os.getpid(), signal.SIGTERM)  # faust's own graceful shutdown path

    runtime.on_startup_failure = stop_on_startup_failure
    log.info(
        "worker_starting",
        bootstrap=settings.kafka_bootstrap,
        topics_created=created,
        metrics=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        health=f"http://{settings.metrics_host}:{settings.metrics_port}/readyz",
        model=settings.model_ref,
    )
    log.info("delivery_settings", **delivery_summary(app.conf, settings))
    worker = _Worker(
        app, loglevel=settings.log_level.lower(), quiet=True, log_handler=log_handler, repeat_filter=repeat_filter
    )
    try:
        worker.execute_from_commandline()  # blocks; exits the process on SIGTERM/SIGINT
    except SystemExit as exc:
        if failed:
            return EXIT_STARTUP_FAILED
        raise SystemExit(exc.code) from None
    return EXIT_STARTUP_FAILED if failed else 0
