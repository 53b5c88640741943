"""The main job on embedded defaults, end to end, then a summary; stops everything it started.

local Kafka broker (KRaft, 127.0.0.1) -> gallery into Milvus Lite (or, with ``--milvus server``, a
real Milvus 2.3 standalone server started and stopped here by PID) -> worker -> generated seller
uploads -> enriched topic -> accuracy, samples, throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from infra.kafka.runner import BROKER_LOG, BrokerConfig, KafkaBroker


def _catalog(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def _step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait for /readyz: models loaded, Milvus answering, partitions assigned (503 until then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited during start-up (code {proc.returncode}); see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):  # noqa: S310 - loopback
                return
        except OSError:  # HTTPError 503 (not ready yet) is an OSError too
            time.sleep(0.5)
    raise TimeoutError("worker did not become ready")


@contextlib.contextmanager
def _milvus(kind: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URI, name) of the demo's Milvus: the Lite DB in the workdir, or a real server of its own."""
    if kind == "lite":
        yield str(workdir / "milvus.db"), "Milvus Lite"
        return
    from infra.milvus.server import MilvusServer, ServerConfig

    data = Path(tempfile.mkdtemp(prefix="milvus-server-", dir=workdir))
    _step("starting a real Milvus 2.3 standalone server (PyPI package milvus, 127.0.0.1)")
    server = MilvusServer(ServerConfig(data_dir=data, stop_with_parent=True)).start()
    print(f"milvus {server.uri} pid {server.pid}, ready in {server.ready_seconds:.1f}s")
    try:
        yield server.uri, "the Milvus server"
    finally:  # after the worker (stopped in _run): a fresh server per run, keep only its log
        _step(f"stopping the Milvus server (pid {server.pid})")
        server.stop()
        if server.log_path.exists():
            shutil.copyfile(server.log_path, workdir / "milvus-server.log")
        shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=300)
    p.add_argument("--gallery", type=int, default=10_000)
    p.add_argument("--style", choices=["plain", "seller"], default="plain")
    p.add_argument("--workdir", default="runs/demo")
    p.add_argument(
        "--milvus",
        choices=["lite", "server"],
        default="lite",
        help="lite: embedded Milvus Lite (default); server: a real Milvus 2.3 standalone server (PyPI milvus)",
    )
    args = p.parse_args(argv)

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    kafka_dir = Path(tempfile.mkdtemp(prefix="kafka-", dir=workdir))
    from infra.kafka.runner import free_ports

    metrics_port = free_ports(1)[0]
    env = {
        **os.environ,
        "CATALOG_WORKER_STATE_DIR": str(workdir / "worker-state"),
        "CATALOG_METRICS_PORT": str(metrics_port),
        "CATALOG_APP_ID": f"demo-{int(time.time())}",
    }
    try:
        with _milvus(args.milvus, workdir) as (milvus_uri, milvus_name):
            env["CATALOG_MILVUS_URI"] = milvus_uri
            return _run(args, workdir, kafka_dir, env, milvus_name)
    finally:  # the broker's topics die with it; keep only its log
        if (kafka_dir / BROKER_LOG).exists():
            shutil.copyfile(kafka_dir / BROKER_LOG, workdir / BROKER_LOG)
        shutil.rmtree(kafka_dir, ignore_errors=True)


def _run(args: argparse.Namespace, workdir: Path, kafka_dir: Path, env: dict[str, str], milvus_name: str) -> int:
    worker: subprocess.Popen[bytes] | None = None
    metrics_port = int(env["CATALOG_METRICS_PORT"])
    _step("starting a local Kafka broker (KRaft, 127.0.0.1)")
    with KafkaBroker(BrokerConfig(data_dir=kafka_dir)) as broker:
        env["CATALOG_KAFKA_BOOTSTRAP"] = broker.bootstrap_servers
        print(f"broker {broker.bootstrap_servers} pid {broker.pid}")
        try:
            _step(f"loading {args.gallery} labelled Fashion-MNIST train items into {milvus_name} as 'confirmed'")
            subprocess.run(
                _catalog("gallery", "load", "--limit", str(args.gallery), "--style", args.style),
                env=env,
                check=True,
            )
            _step("starting the worker")
            log = (workdir / "worker.log").open("wb")
            worker = subprocess.Popen(
                _catalog("worker"), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            _wait_ready(metrics_port, worker)
            print(f"worker pid {worker.pid}, metrics http://127.0.0.1:{metrics_port}/metrics, log {log.name}")
            truth = workdir / "truth.jsonl"
            _step(f"publishing {args.events} generated uploads ({args.style} photos of test items)")
            subprocess.run(
                _catalog("produce", "--generated", str(args.events), "--style", args.style, "--truth", str(truth)),
                env=env,
                check=True,
            )
            _step("reading the enriched topic")
            done = subprocess.run(
                _catalog("report", "--truth", str(truth), "--timeout", "300"),
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            print(done.stdout)
            summary = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
            (workdir / "summary.json").write_text(done.stdout)
            return 0 if summary.get("enriched") == args.events else 1
        finally:
            if worker is not None and worker.poll() is None:
                _step(f"stopping the worker (pid {worker.pid}) and the broker (pid {broker.pid})")
                worker.terminate()
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()


if __name__ == "__main__":
    sys.exit(main())
