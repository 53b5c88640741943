"""The real parts a chaos run needs: one broker, one Milvus several workers share, and the workers.

Why one owner for every process: whatever happens (a failed target, an exception, Ctrl-C or
SIGTERM), ``Stack.close`` stops every worker, the Milvus server and the broker by PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from infra.harness.worker_process import WorkerEnv, WorkerProcess, free_port
from infra.kafka.runner import BrokerConfig, KafkaBroker

MilvusKind = Literal["lite-server", "server"]
PARTITIONS = 4


def milvus_server_available() -> bool:
    """The real Milvus 2.3 runner (``infra/milvus/server.py``) is in this checkout."""
    return importlib.util.find_spec("infra.milvus.server") is not None


def static_membership_setting() -> bool:
    """The worker has the static-membership setting (read as text: importing settings loads torch)."""
    spec = importlib.util.find_spec("streams.settings")
    return bool(spec and spec.origin and "worker_instance_id" in Path(spec.origin).read_text())


class Stack:
    """Context manager: broker (own, or ``bootstrap`` if given) + Milvus + the trusted gallery."""

    def __init__(
        self,
        bootstrap: str | None = None,
        milvus: MilvusKind = "lite-server",
        workdir: Path | None = None,
        gallery: int = 200,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="catalog-chaos-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._given_bootstrap = bootstrap
        self.milvus_kind = milvus
        self.gallery = gallery
        self.broker: KafkaBroker | None = None
        self.milvus: Any = None
        self.collection = ""
        self.workers: list[WorkerProcess] = []

    @property
    def bootstrap(self) -> str:
        if self._given_bootstrap:
            return self._given_bootstrap
        assert self.broker is not None
        return self.broker.bootstrap_servers

    @property
    def owns_broker(self) -> bool:
        return self.broker is not None

    @property
    def milvus_uri(self) -> str:
        return str(self.milvus.uri)

    def open(self) -> Stack:
        if not self._given_bootstrap:
            config = BrokerConfig(data_dir=self.workdir / "kafka", stop_with_parent=True, num_partitions=PARTITIONS)
            self.broker = KafkaBroker(config)
            self.broker.start_ready()
        self.milvus = self._start_milvus()
        self.collection = self._load_gallery()
        return self

    def _start_milvus(self) -> Any:
        data = self.workdir / "milvus"
        if self.milvus_kind == "server":
            if not milvus_server_available():
                raise RuntimeError("--milvus server needs infra/milvus/server.py (not in this checkout)")
            from infra.milvus.server import MilvusServer, ServerConfig

            return MilvusServer(ServerConfig(data_dir=data, stop_with_parent=True)).__enter__()
        from infra.milvus.lite_server import MilvusLiteServer

        return MilvusLiteServer(data).start()

    def _load_gallery(self) -> str:
        """A small trusted gallery so the workers can vote; returns the collection name."""
        env = self.env("gallery")
        out = env.run("gallery", "load", "--limit", str(self.gallery), timeout=600)
        return str(json.loads(out.strip().splitlines()[-1])["collection"])

    def env(self, tag: str, **extra: str) -> WorkerEnv:
        """Fresh topics and group for one scenario, on the shared broker and Milvus."""
        workdir = self.workdir / f"{tag}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir(parents=True)
        return WorkerEnv(
            self.bootstrap,
            workdir,
            extra={
                "CATALOG_MILVUS_URI": self.milvus_uri,
                "CATALOG_TOPIC_PARTITIONS": str(PARTITIONS),
                "CATALOG_BATCH_MAX_SIZE": "32",
                "CATALOG_BATCH_MAX_WAIT_S": "0.3",
                "CATALOG_TORCH_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "CATALOG_LOG_LEVEL": "INFO",
                **extra,
            },
        )

    def worker(self, env: WorkerEnv, name: str) -> WorkerProcess:
        """A worker of ``env``'s group with its own port and state folder, and a stable instance id.

        The instance id is the static group membership of issue 18 (``CATALOG_WORKER_INSTANCE_ID``);
        a restarted worker reuses its name, so it reclaims its partitions. Older workers ignore it.
        """
        overrides = {
            "CATALOG_METRICS_PORT": str(free_port()),
            "CATALOG_WORKER_STATE_DIR": str(env.workdir / f"state-{name}"),
            "CATALOG_WORKER_INSTANCE_ID": f"{env.group}-{name}",
        }
        worker = WorkerProcess(env, overrides, name=name)
        self.workers.append(worker)
        return worker

    def restart_broker(self, down_s: float) -> tuple[float, float]:
        """Stop the broker (SIGTERM: controlled shutdown), stay down ``down_s``, start it on the same ports.

        Returns the wall-clock seconds of the stop and of the broker answering again.
        """
        assert self.broker is not None, "only a broker this run started can be restarted"
        stopped_at = time.time()
        self.broker.stop()
        time.sleep(down_s)
        self.broker.start()
        self.broker.wait_ready(120)
        return stopped_at, time.time()

    def stop_workers(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop(timeout=20)
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        if self.milvus is not None:
            with contextlib.suppress(Exception):
                self.milvus.stop()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                self.broker.stop()
        if self._tmp is not None and not os.environ.get("CHAOS_KEEP_WORKDIR"):
            self._tmp.cleanup()

    def __enter__(self) -> Stack:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
