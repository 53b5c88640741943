"""A real ``catalog worker`` subprocess on unique topics, plus produce/consume helpers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
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
        self.topics = {k: f"t{tag}.{k}" for k in ("images", "enriched", "dlq", "labels")}
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "CATALOG_KAFKA_BOOTSTRAP": self.bootstrap,
            "CATALOG_APP_ID": f"test-{tag}",
            "CATALOG_TOPIC_IMAGES": self.topics["images"],
            "CATALOG_TOPIC_ENRICHED": self.topics["enriched"],
            "CATALOG_TOPIC_DLQ": self.topics["dlq"],
            "CATALOG_TOPIC_LABELS": self.topics["labels"],
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

    def run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            catalog_cmd(*args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"catalog {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout


class WorkerProcess:
    def __init__(self, env: WorkerEnv) -> None:
        self.env = env
        self.log_path = env.workdir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> WorkerProcess:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            catalog_cmd("worker"),
            env=self.env.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early ({self.proc.returncode}):\n{self.log_tail()}")
            if self.metrics_text() is not None:
                return self
            time.sleep(0.3)
        raise TimeoutError(f"worker metrics never came up:\n{self.log_tail()}")

    def metrics_text(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.env.metrics_port}/metrics", timeout=2) as r:  # noqa: S310
                return r.read().decode()
        except OSError:
            return None

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        total = 0.0
        for line in (self.metrics_text() or "").splitlines():
            if line.startswith((name + "{", name + " ")):
                head, _, value = line.rpartition(" ")
                if all(f'{k}="{v}"' in head for k, v in labels.items()):
                    total += float(value)
        return total

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

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
