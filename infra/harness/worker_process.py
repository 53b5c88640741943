"""A real ``catalog worker`` subprocess on unique topics, plus produce/consume helpers.

Why here and not in ``tests/``: the chaos runner (``python -m infra.chaos``) starts, kills
and restarts the same workers as the integration tests, so both use this one harness.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.processes import stop_process_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def catalog_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


@dataclass
class WorkerEnv:
    """Environment for one isolated worker: its own topics, group, Milvus DB and metrics port."""

    bootstrap: str
    workdir: Path
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.topics = {k: f"t{tag}.{k}" for k in ("images", "enriched", "dlq", "labels", "gallery")}
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "CATALOG_KAFKA_BOOTSTRAP": self.bootstrap,
            "CATALOG_APP_ID": f"test-{tag}",
            "CATALOG_TOPIC_IMAGES": self.topics["images"],
            "CATALOG_TOPIC_ENRICHED": self.topics["enriched"],
            "CATALOG_TOPIC_DLQ": self.topics["dlq"],
            "CATALOG_TOPIC_LABELS": self.topics["labels"],
            "CATALOG_TOPIC_GALLERY": self.topics["gallery"],
            "CATALOG_TOPIC_MODELS": f"t{tag}.models",  # workers follow its activations: one per env, not shared
            "CATALOG_TOPIC_PARTITIONS": "2",
            "CATALOG_MILVUS_URI": str(self.workdir / "milvus.db"),
            "CATALOG_WORKER_STATE_DIR": str(self.workdir / "worker-state"),
            "CATALOG_METRICS_PORT": str(self.metrics_port),
            "CATALOG_BATCH_MAX_WAIT_S": "0.3",
            "CATALOG_TORCH_THREADS": "1",
            "CATALOG_RETRY_BACKOFF_INITIAL_S": "0.2",
            "CATALOG_RETRY_BACKOFF_MAX_S": "1.0",
            "CATALOG_LOG_LEVEL": "INFO",
            **self.extra,
        }

    @property
    def group(self) -> str:
        """The consumer group (faust's app id)."""
        return self.env["CATALOG_APP_ID"]

    def run(self, *args: str, timeout: float = 300, overrides: Mapping[str, str] | None = None) -> str:
        """``catalog ARGS`` in this environment, ``overrides`` on top (e.g. another Milvus URI)."""
        done = subprocess.run(
            catalog_cmd(*args),
            env={**self.env, **(overrides or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"catalog {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout


class WorkerProcess:
    """One worker process; several may share one ``WorkerEnv`` (same topics and group).

    ``overrides`` are extra variables for this process only (its own metrics port, state
    folder or group instance id), so a group of workers can run side by side.
    """

    def __init__(self, env: WorkerEnv, overrides: Mapping[str, str] | None = None, name: str | None = None) -> None:
        self.env = env
        self.name = name or uuid.uuid4().hex[:6]
        self.overrides = dict(overrides or {})
        self.metrics_port = int(self.overrides.get("CATALOG_METRICS_PORT", env.metrics_port))
        self.log_path = env.workdir / f"worker-{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def launch(self) -> WorkerProcess:
        """Start the process without waiting for it (the caller polls ``ready``)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            catalog_cmd("worker"),
            env={**self.env.env, **self.overrides},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def start(self, timeout: float = 120.0) -> WorkerProcess:
        self.launch()
        self.wait_ready(timeout)
        return self

    def ready(self) -> bool:
        """``/readyz`` answers 200 where the worker serves it; else the metrics endpoint is up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2) as r:  # noqa: S310
                return r.status == 200
        except urllib.error.HTTPError as exc:
            return exc.code == 404 and self.metrics_text() is not None  # an older worker: no /readyz
        except OSError:
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early ({self.proc.returncode}):\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker never became ready:\n{self.log_tail()}")

    def metrics_text(self, within_s: float = 15.0) -> str | None:
        """The worker's /metrics page; None once it is not running or has not answered for ``within_s``.

        Why the retries: a loaded machine (two test processes, a broker, Milvus) can leave one scrape
        unanswered for a few seconds, and a one-shot read must not turn that into a counter of 0.
        """
        deadline = time.monotonic() + within_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:  # noqa: S310
                    return r.read().decode()
            except OSError:
                if not self.alive() or time.monotonic() >= deadline:
                    return None
                time.sleep(0.5)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        return _sum_samples(self.metrics_text() or "", name, labels)

    def metrics(self, *names: str) -> dict[str, float]:
        """Several metrics' sums from one scrape: values that belong to the same moment."""
        text = self.metrics_text() or ""
        return {name: _sum_samples(text, name, {}) for name in names}

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the worker's whole process group at once (a crash: no shutdown, no commit)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        stop_process_group(self.proc, timeout, kill_wait=10)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16_000_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topics: list[str], count: int | Callable[[dict[str, list[dict]]], bool], timeout: float
) -> dict[str, list[dict]]:
    """Read from the beginning until ``count`` messages (or the predicate holds) or the timeout passed."""
    done = count if callable(count) else (lambda got: sum(map(len, got.values())) >= count)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    got: dict[str, list[dict]] = {t: [] for t in topics}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(got):
            batch = await consumer.getmany(timeout_ms=300)
            for tp, msgs in batch.items():
                got[tp.topic].extend(json.loads(m.value) for m in msgs)
    finally:
        await consumer.stop()
    return got


def _sum_samples(text: str, name: str, labels: dict[str, str]) -> float:
    """Sum of ``name``'s samples in a /metrics page whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
    return total
