"""Time from a worker's SIGKILL to the next enriched output, on a real broker (test helper and CLI).

Why Kafka timestamps: an output's record timestamp is set by the worker's producer when it
sends, so "the first enriched record stamped after the kill" is the moment output resumed,
whatever the reading side's delays.

CLI: ``python -m tests.support.recovery --kills 5 [--instance-id] [--set CATALOG_X=Y ...]``
(starts a local broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.events import encode, good_event
from tests.support.worker import WorkerEnv, WorkerProcess


@contextmanager
def steady_traffic(env: WorkerEnv, per_s: float = 10.0, limit_s: float = 600.0) -> Iterator[None]:
    """Produce good events at ``per_s`` in a background thread until the block ends (bounded)."""
    stop = threading.Event()

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all")
        await producer.start()
        try:
            deadline, i = time.monotonic() + limit_s, 0
            while not stop.is_set() and time.monotonic() < deadline:
                event = good_event(i, product_id=f"steady-{i}")[0]
                await producer.send(env.topics["images"], key=event["product_id"].encode(), value=encode(event))
                i += 1
                await asyncio.sleep(1.0 / per_s)
        finally:
            await producer.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


async def first_output_after(env: WorkerEnv, after_s: float, timeout: float) -> float | None:
    """Seconds from ``after_s`` (time.time()) to the first enriched record stamped later; None on timeout."""
    consumer = AIOKafkaConsumer(
        env.topics["enriched"], bootstrap_servers=env.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            stamps = [m.timestamp / 1000 for msgs in batch.values() for m in msgs if m.timestamp / 1000 > after_s]
            if stamps:
                return min(stamps) - after_s
    finally:
        await consumer.stop()
    return None


async def longest_output_gap(env: WorkerEnv, start_s: float, end_s: float, timeout: float) -> float:
    """Longest pause between enriched records stamped in [start_s, end_s] (time.time()), edges included."""
    consumer = AIOKafkaConsumer(
        env.topics["enriched"], bootstrap_servers=env.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    stamps: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch and stamps and stamps[-1] >= end_s:
                break
            stamps += [m.timestamp / 1000 for msgs in batch.values() for m in msgs]
            if any(t >= end_s for t in stamps):
                break
    finally:
        await consumer.stop()
    inside = sorted([start_s] + [t for t in stamps if start_s <= t <= end_s] + [end_s])
    return max(b - a for a, b in zip(inside, inside[1:], strict=False))


def kill_and_time(env: WorkerEnv, worker: WorkerProcess, timeout: float = 60.0) -> tuple[float | None, WorkerProcess]:
    """SIGKILL ``worker`` mid-stream, start a replacement at once; returns (recovery seconds, the new worker)."""
    killed_at = time.time()
    worker.kill()
    replacement = WorkerProcess(env, worker.overrides, name=f"{worker.name}r").launch()
    recovery = asyncio.run(first_output_after(env, killed_at, timeout))
    return recovery, replacement


def main(argv: list[str] | None = None) -> int:
    from tests.kafka_backend import kafka_bootstrap

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--instance-id", action="store_true", help="static group membership (CATALOG_WORKER_INSTANCE_ID)")
    p.add_argument("--set", action="append", default=[], help="extra CATALOG_X=Y for the worker")
    p.add_argument("--join", action="store_true", help="two workers; kill one, start a third at once: survivor's gap")
    args = p.parse_args(argv)
    if args.join:
        return _join_main(args)
    extra = dict(kv.split("=", 1) for kv in args.set)
    overrides = {"CATALOG_WORKER_INSTANCE_ID": "recovery-worker-1"} if args.instance_id else {}
    figures: list[float | None] = []
    with tempfile.TemporaryDirectory(prefix="recovery-") as tmp, kafka_bootstrap() as bootstrap:
        env = WorkerEnv(bootstrap, Path(tmp), extra=extra)
        worker = WorkerProcess(env, overrides, name="w0").start()
        try:
            with steady_traffic(env):
                time.sleep(3)
                for _ in range(args.kills):
                    recovery, worker = kill_and_time(env, worker)
                    figures.append(None if recovery is None else round(recovery, 2))
                    print(json.dumps({"kill": len(figures), "recovery_s": figures[-1]}), flush=True)
                    worker.wait_ready(60)
                    time.sleep(2)
        finally:
            worker.stop()
    done = [f for f in figures if f is not None]
    summary = {
        "kills": args.kills,
        "instance_id": args.instance_id,
        "extra": extra,
        "recovery_s": figures,
        "median_s": statistics.median(done) if done else None,
        "max_s": max(done) if done else None,
    }
    print(json.dumps(summary))
    return 0 if len(done) == len(figures) else 1


def _join_main(args: argparse.Namespace) -> int:
    """Two workers share the stream; one is killed and a new one joins while its session is open.

    The longest gap in all output over the next 30 s is the surviving worker's freeze (the dead
    worker's partitions give nothing until they move).
    """
    from tests.kafka_backend import kafka_bootstrap
    from tests.support.worker import free_port

    extra = dict(kv.split("=", 1) for kv in args.set)
    gaps = []
    from infra.milvus.lite_server import MilvusLiteServer

    with (
        tempfile.TemporaryDirectory(prefix="recovery-") as tmp,
        kafka_bootstrap() as bootstrap,
        MilvusLiteServer(Path(tmp) / "milvus") as milvus,  # Lite's DB file takes one process: share a server
    ):
        env = WorkerEnv(
            bootstrap, Path(tmp), extra={"CATALOG_TOPIC_PARTITIONS": "4", "CATALOG_MILVUS_URI": milvus.uri, **extra}
        )

        def worker(name: str) -> WorkerProcess:
            own = {"CATALOG_METRICS_PORT": str(free_port()), "CATALOG_WORKER_STATE_DIR": f"{tmp}/state-{name}"}
            return WorkerProcess(env, own, name=name)

        workers = [worker("a").start(), worker("b").start()]
        try:
            with steady_traffic(env, per_s=20):
                time.sleep(5)
                for i in range(args.kills):
                    killed_at = time.time()
                    workers[0].kill()
                    workers[0] = worker(f"j{i}").launch()
                    time.sleep(30)
                    gap = asyncio.run(longest_output_gap(env, killed_at, killed_at + 30, 60))
                    gaps.append(round(gap, 2))
                    print(json.dumps({"kill": i + 1, "longest_gap_s": gaps[-1]}), flush=True)
                    workers = workers[::-1]  # kill the other one next time
        finally:
            for w in workers:
                w.stop()
    print(json.dumps({"scenario": "kill one of two, a third joins at once", "extra": extra, "longest_gap_s": gaps}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
