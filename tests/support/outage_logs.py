"""How many log lines a worker writes per second while its broker is down (test helper and CLI).

CLI: ``python -m tests.support.outage_logs [--window 10] [--outage 15]``; ``--window 0`` turns the
repeat filter off, which gives the figure before it existed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from infra.kafka.runner import BrokerConfig, KafkaBroker
from tests.support.worker import WorkerEnv, WorkerProcess


def _lines(worker: WorkerProcess) -> list[str]:
    return worker.log_path.read_text(errors="replace").splitlines()


def measure(workdir: Path, window_s: float, outage_s: float = 15.0) -> dict[str, float | bool]:
    """Own broker (it is stopped), one worker; lines/s during the outage, and whether the worker came back."""
    broker = KafkaBroker(BrokerConfig(data_dir=workdir / "kafka", stop_with_parent=True))
    broker.start_ready()
    worker = None
    try:
        env = WorkerEnv(broker.bootstrap_servers, workdir, extra={"CATALOG_LOG_REPEAT_WINDOW_S": str(window_s)})
        worker = WorkerProcess(env).start()
        time.sleep(2)
        before = len(_lines(worker))
        broker.stop()
        time.sleep(outage_s)
        during = _lines(worker)[before:]
        broker.start()
        broker.wait_ready()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not worker.ready():
            time.sleep(0.5)
        return {
            "window_s": window_s,
            "outage_s": outage_s,
            "lines_per_s": round(len(during) / outage_s, 1),
            "error_lines_per_s": round(sum("ERROR" in line or '"error"' in line for line in during) / outage_s, 1),
            "worker_alive": worker.alive(),
            "ready_again": worker.ready(),
        }
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=float, default=10.0, help="CATALOG_LOG_REPEAT_WINDOW_S (0: filter off)")
    p.add_argument("--outage", type=float, default=15.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="outage-logs-") as tmp:
        print(json.dumps(measure(Path(tmp), args.window, args.outage)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
