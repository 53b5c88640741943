"""The worker harness for tests; it lives in ``infra.harness.worker_process`` (shared with the chaos runner)."""

from infra.harness.worker_process import WorkerEnv, WorkerProcess, catalog_cmd, consume, free_port, produce

__all__ = ["WorkerEnv", "WorkerProcess", "catalog_cmd", "consume", "free_port", "produce"]
