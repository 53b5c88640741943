"""End-to-end worker throughput per CATALOG_* configuration (e.g. pipeline in flight), alternating, one sitting.

``PYTHONPATH=. python research/experiments/in_flight_e2e.py --gallery 10000 --events 2000 --rounds 4
--config "if1:CATALOG_PIPELINE_IN_FLIGHT=1" --config "if3:CATALOG_PIPELINE_IN_FLIGHT=3"``: one local
broker and one Lite gallery for all runs; per run, N generated seller uploads are produced first
(a backlog), then a worker with the run's settings starts; throughput = the outputs after the first
output batch / (last output's Kafka timestamp - that batch's): the worker's steady rate, producer and
start-up excluded (``processors.stream_stats.steady_rate``, no further warm-up). Rounds
alternate the order so a shared machine's load drift hits every configuration alike; the paired
ratio (median over rounds of the within-round ratio) is the figure to quote. ``machine_cpu_ms_per_event``
is the CPU every process of the machine spent per output while the run's outputs were read (worker,
its children, broker, Milvus): on a machine the stream saturates it sets the rate. ``models_busy`` is
the models stage's time over the run's wall time (1.0: the models never wait for the other
stages). ``catalog bench stream`` is the official end-to-end figure; this is the A/B tool.
A config holding ``LITE_SERVER=1`` serves the same Lite data from a ``milvus-lite server`` process
of its own for that run (Milvus Lite 3.x is pure Python: embedded, its threads share the worker's GIL).
A config holding ``CATALOG_MILVUS_INDEX_TYPE`` or ``CATALOG_MILVUS_INDEX_PARAMS`` gets a gallery of its
own, loaded with that index (a collection's index is fixed when it is created); configs without them
share the default one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from infra.bench.cpu import machine_busy_s
from infra.bench.memory import peak_rss_bytes
from infra.harness.worker_process import WorkerEnv, WorkerProcess
from infra.kafka.runner import BrokerConfig, KafkaBroker
from infra.milvus.lite_server import MilvusLiteServer
from processors.gallery import IMAGE_SUFFIXES
from processors.stream_stats import steady_rate

INDEX_SHAPING = frozenset({"CATALOG_MILVUS_INDEX_TYPE", "CATALOG_MILVUS_INDEX_PARAMS"})


async def read_since(bootstrap: str, topic: str, since_ms: int, n: int, timeout: float) -> list[int]:
    """Timestamps of the records stamped at or after ``since_ms`` (this run's worker), until ``n`` of them."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await c.start()
    stamps: list[int] = []
    try:
        deadline = time.monotonic() + timeout
        while len(stamps) < n and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for msgs in batch.values():
                stamps += [m.timestamp for m in msgs if m.timestamp >= since_ms]
    finally:
        await c.stop()
    return stamps


def worker_cpu_s(pid: int) -> float:
    """utime + stime of the worker and its children that were reaped (s)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--gallery", type=int, default=10_000)
    p.add_argument("--events", type=int, default=1500)
    p.add_argument("--config", action="append", required=True, help="name:KEY=V;KEY=V (CATALOG_ settings per run)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--folder", help="publish these images each run (catalog produce --folder) instead of generated ones"
    )
    p.add_argument("--out")
    args = p.parse_args()
    if args.folder:  # every image under it, once per run
        args.events = sum(1 for f in Path(args.folder).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    configs = {}
    for c in args.config:
        name, _, kvs = c.partition(":")
        configs[name] = dict(kv.split("=", 1) for kv in kvs.split(";") if kv)
    names = list(configs)
    results: dict[str, list[float]] = {n: [] for n in names}
    details: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="e2e-") as tmp,
        KafkaBroker(BrokerConfig(data_dir=Path(tmp) / "kafka")) as broker,
    ):
        bootstrap = broker.bootstrap_servers
        env = WorkerEnv(bootstrap, Path(tmp), extra={"CATALOG_TOPIC_PARTITIONS": "4"})
        env.env.pop("CATALOG_TORCH_THREADS", None)  # the harness pins 1 for tests; here per config
        env.env.update({"CATALOG_BATCH_MAX_WAIT_S": "0.5", "CATALOG_LOG_LEVEL": "WARNING"})
        t0 = time.monotonic()

        def load_gallery(overrides: dict[str, str] | None = None) -> None:
            env.run(
                "gallery", "load", "--limit", str(args.gallery), "--style", "seller", timeout=1800, overrides=overrides
            )

        load_gallery()
        print(f"gallery {args.gallery} loaded in {time.monotonic() - t0:.0f}s", flush=True)
        for name, settings in configs.items():
            shaping = {k: v for k, v in settings.items() if k in INDEX_SHAPING}
            if shaping:  # an index of its own: a gallery of its own
                settings["CATALOG_MILVUS_URI"] = str(Path(tmp) / f"milvus-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.db")
                load_gallery({"CATALOG_MILVUS_URI": settings["CATALOG_MILVUS_URI"], **shaping})
                print(f"gallery {args.gallery} ({name}: {shaping}) loaded", flush=True)
        w = WorkerProcess(env, name="topics").start()  # creates the topics with 4 partitions
        w.stop()
        for r in range(args.rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                generated = ["--generated", str(args.events), "--style", "seller", "--seed", str(r * 10 + len(name))]
                env.run("produce", *(["--folder", args.folder] if args.folder else generated), timeout=900)
                since = int(time.time() * 1000)
                settings = dict(configs[name])
                lite_server = None
                if settings.pop("LITE_SERVER", None):  # the same Lite data, served by a process of its own
                    lite_server = MilvusLiteServer(
                        Path(settings.get("CATALOG_MILVUS_URI", env.env["CATALOG_MILVUS_URI"]))
                    ).start()
                    settings["CATALOG_MILVUS_URI"] = lite_server.uri
                worker = WorkerProcess(env, settings, name=f"r{r}-{name}").start()
                try:
                    cpu0, busy0 = worker_cpu_s(worker.pid), machine_busy_s()
                    stamps = asyncio.run(read_since(bootstrap, env.topics["enriched"], since, args.events, 900))
                    cpu1, busy1 = worker_cpu_s(worker.pid), machine_busy_s()
                    inference = worker.metric("catalog_stage_seconds_sum", stage="inference")
                    peak_rss_mib = (peak_rss_bytes(worker.pid) or 0) / 2**20
                    overlapped = worker.metric("catalog_batches_overlapped_total")
                finally:
                    worker.stop()
                    if lite_server is not None:
                        lite_server.stop()
                stamps.sort()
                wall = (stamps[-1] - stamps[0]) / 1000.0
                # from the first output batch's stamp on, that batch left out: n / (last - first) counted a
                # whole batch with no time for it (up to 9 % high at batches of 256; runs before 2026-12-03)
                rate = steady_rate(stamps, warmup_fraction=0.0).events_per_s
                results[name].append(rate)
                load = Path("/proc/loadavg").read_text().split()[0]
                row = {
                    "round": r,
                    "config": name,
                    "events_per_s": rate,
                    "load1": float(load),
                    "worker_cpu_ms_per_event": round(1000 * (cpu1 - cpu0) / len(stamps), 1),
                    "machine_cpu_ms_per_event": round(1000 * (busy1 - busy0) / len(stamps), 1),
                    "models_busy": round(inference / wall, 3),
                    "overlapped_batches": overlapped,
                    "worker_peak_rss_mib": round(peak_rss_mib, 1),
                }
                details.append(row)
                print(json.dumps(row), flush=True)
    base = results[names[0]]
    summary = {
        "configs": configs,
        "runs": results,
        "median": {n: statistics.median(x) for n, x in results.items()},
        "paired_vs_first": {
            n: round(statistics.median(a / b for a, b in zip(x, base, strict=True)), 3) for n, x in results.items()
        },
        "details": details,
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
