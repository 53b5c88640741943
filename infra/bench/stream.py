"""``catalog bench stream``: Kafka -> decode -> models -> Milvus -> Kafka, end to end, against the models alone.

One run, one machine, the same threads:

1. the models alone (``run_models`` as the worker calls it) on the run's own decoded images,
   in this process, before the worker starts;
2. a gallery of ``gallery`` labelled items loaded by ``catalog gallery load``;
3. one real worker process (``catalog worker``) on topics of the run's own;
4. full load: ``events`` uploads published at once; steady-state events/s from the output
   records' Kafka timestamps (first output to last, the first ``warmup_fraction`` left out), and
   latency from ``submitted_at`` to the output's timestamp (it includes time queued in Kafka);
5. half load: uploads paced at ``paced_fraction`` of the measured rate; latency again;
6. the models alone once more, with the worker idle; the headline ratio uses the mean of both.

Per-batch stage times come from the ``timings`` every enriched event carries, batch sizes from
grouping outputs by those timings, the worker's peak RSS from ``/proc/<pid>/status`` (VmHWM).

Everything started here is stopped here by PID (worker, broker, Milvus server), in reverse
order, also on failure; topics and collections are the run's own (a broker given by
``bootstrap`` keeps nothing: the run's topics are deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.bench.memory import RssSampler, peak_rss_bytes
from infra.bench.stream_traffic import AnswerCollector, Sent, Uploads, publish
from infra.harness.worker_process import WorkerEnv, WorkerProcess
from processors import stream_stats as st
from streams.settings import Settings

Progress = Callable[[str], None]
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StreamBenchConfig:
    """What one run measures; every count and wait is bounded."""

    events: int = 5000
    gallery: int = 10_000
    style: str = "seller"
    milvus: str = "lite"  # lite: a Milvus Lite file of the worker's; server: a real Milvus 2.3 server of the run's
    device: str = "cpu"
    batch_size: int = 64
    batch_wait_s: float = 0.5
    torch_threads: int = 1
    partitions: int = 4
    in_flight: int | None = None  # image batches in flight in the worker (None: the worker's setting)
    paced_fraction: float = 0.5
    paced_events: int | None = None  # default: events // 2, at most paced_max_s worth
    paced_max_s: float = 120.0
    warmup_fraction: float = 0.05
    models_only_images: int = 1024
    image_pool: int = 2000  # distinct generated images; events cycle through them
    stall_s: float = 120.0  # give up when no output arrived this long
    timeout_s: float = 3600.0  # the whole run
    worker_ready_s: float = 300.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.events < 2 * self.batch_size or self.gallery < 1:
            raise ValueError("events must be at least two batches and gallery at least 1")
        if self.milvus not in ("lite", "server") or self.style not in ("seller", "plain"):
            raise ValueError("milvus is lite or server, style seller or plain")
        if not 0.0 < self.paced_fraction <= 1.0 or not 0.0 <= self.warmup_fraction < 0.5:
            raise ValueError("paced_fraction in (0, 1], warmup_fraction in [0, 0.5)")


class BenchError(RuntimeError):
    """The run could not measure what it was asked to (a process died, outputs stopped coming)."""


def run_stream_bench(
    config: StreamBenchConfig,
    settings: Settings,
    *,
    bootstrap: str | None = None,
    workdir: Path | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run every phase and return the report (a JSON-ready dict); raises ``BenchError`` when a phase fails."""
    started = time.monotonic()
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-")))
        work.mkdir(parents=True, exist_ok=True)
        kafka, kafka_origin = stack.enter_context(_broker(bootstrap, work, progress))
        milvus_uri, milvus_origin = stack.enter_context(_milvus(config.milvus, work, progress))
        env = WorkerEnv(kafka, work, extra=_worker_vars(config, settings, milvus_uri))
        run_settings = _run_settings(settings, env, config)
        if bootstrap:
            stack.callback(_delete_run_topics, run_settings, _tag(env), progress)

        progress(f"generating {min(config.image_pool, config.events)} {config.style} upload images")
        images_b64 = _upload_images(config, run_settings)
        models = _ModelsOnly(env, work, images_b64, config)
        models_before = models.measure()
        progress(f"models only: {models_before:.1f} images/s (before the worker)")

        progress(f"loading a gallery of {config.gallery:,} into {milvus_origin}")
        t0 = time.monotonic()
        _load_gallery(env, config)
        gallery_s = time.monotonic() - t0

        worker = WorkerProcess(env, name="bench")
        stack.callback(worker.stop)
        worker.start(timeout=config.worker_ready_s)
        assert worker.pid is not None
        sampler = RssSampler(worker.pid).start()
        stack.callback(sampler.stop)
        progress(f"worker pid {worker.pid} ready; log {worker.log_path}")

        deadline = started + config.timeout_s
        phases = asyncio.run(_traffic(config, run_settings, env, images_b64, deadline, progress, worker))
        worker_peak = peak_rss_bytes(worker.pid)
        batch_metric = (worker.metric("catalog_batch_size_sum"), worker.metric("catalog_batch_size_count"))
        sampler.stop()
        worker.stop()

        models_after = models.measure()
        progress(f"models only: {models_after:.1f} images/s (after, worker stopped)")
        report = _report(
            config,
            run_settings,
            phases,
            models=(models_before, models_after),
            models_facts=models.facts,
            worker_peak=worker_peak,
            rss=sampler.samples,
            batch_metric=batch_metric,
            gallery_s=gallery_s,
            origins={"kafka": kafka_origin, "milvus": milvus_origin},
        )
    report["run_tag"] = _tag(env)
    report["worker"]["pid"] = worker.pid
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["machine"]["load_average_before"] = [round(x, 2) for x in load_before]
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


# ----------------------------------------------------------------------------- infrastructure


@contextlib.contextmanager
def _broker(bootstrap: str | None, work: Path, progress: Progress) -> Iterator[tuple[str, str]]:
    if bootstrap:
        yield bootstrap, f"given ({bootstrap})"
        return
    from infra.kafka.runner import BrokerConfig, KafkaBroker

    with KafkaBroker(BrokerConfig(data_dir=work / "kafka", stop_with_parent=True)) as broker:
        progress(f"started a local Kafka broker at {broker.bootstrap_servers} (pid {broker.pid})")
        yield broker.bootstrap_servers, "local KRaft broker started for this run"


@contextlib.contextmanager
def _milvus(kind: str, work: Path, progress: Progress) -> Iterator[tuple[str, str]]:
    if kind == "lite":
        yield str(work / "milvus.db"), "Milvus Lite (a local file, embedded in the worker)"
        return
    from infra.milvus.server import PIN, MilvusServer, ServerConfig

    server = MilvusServer(ServerConfig(data_dir=work / "milvus-server", stop_with_parent=True)).start()
    progress(f"started {PIN} at {server.uri} (pid {server.pid}) in {server.ready_seconds:.1f}s")
    try:
        yield server.uri, f"{PIN} standalone server started for this run"
    finally:
        server.stop()


def _worker_vars(config: StreamBenchConfig, settings: Settings, milvus_uri: str) -> dict[str, str]:
    """The worker's settings: the caller's, with the run's Milvus, batch, device and threads."""
    out = {
        "CATALOG_MILVUS_URI": milvus_uri,
        "CATALOG_BATCH_MAX_SIZE": str(config.batch_size),
        "CATALOG_BATCH_MAX_WAIT_S": str(config.batch_wait_s),
        "CATALOG_TORCH_THREADS": str(config.torch_threads),
        "CATALOG_DEVICE": config.device,
        "CATALOG_TOPIC_PARTITIONS": str(config.partitions),
        "CATALOG_RETRY_BACKOFF_INITIAL_S": str(settings.retry_backoff_initial_s),
        "CATALOG_RETRY_BACKOFF_MAX_S": str(settings.retry_backoff_max_s),
        "CATALOG_LOG_LEVEL": "WARNING",  # a log line per batch would cost the worker CPU the run measures
    }
    if config.in_flight is not None:
        out["CATALOG_PIPELINE_IN_FLIGHT"] = str(config.in_flight)
    if settings.config_file:
        out["CATALOG_CONFIG_FILE"] = str(settings.config_file)
    return out


def _load_gallery(env: WorkerEnv, config: StreamBenchConfig) -> None:
    """``infra.bench.gallery_loader`` in a process of its own, with the worker's environment."""
    cmd = [sys.executable, "-m", "infra.bench.gallery_loader", "--limit", str(config.gallery), "--style", config.style]
    done = subprocess.run(
        cmd, env=env.env, cwd=REPO, capture_output=True, text=True, timeout=config.timeout_s, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"loading the gallery failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _tag(env: WorkerEnv) -> str:
    return env.topics["images"].split(".")[0]


def _run_settings(settings: Settings, env: WorkerEnv, config: StreamBenchConfig) -> Settings:
    """The caller's settings pointed at the run's broker, topics and Milvus (for this process's clients)."""
    tag = _tag(env)
    env.env["CATALOG_APP_ID"] = f"bench-{tag}"
    env.env["CATALOG_TOPIC_MODELS"] = f"{tag}.models"  # never the deployment's activation topic
    optional = {}
    if "topic_gallery" in Settings.model_fields:  # the rollout's gallery topic, where this checkout has one
        env.env["CATALOG_TOPIC_GALLERY"] = f"{tag}.gallery"
        optional["topic_gallery"] = env.env["CATALOG_TOPIC_GALLERY"]
    return settings.model_copy(
        update={
            **optional,
            "kafka_bootstrap": env.bootstrap,
            "app_id": env.env["CATALOG_APP_ID"],
            "topic_images": env.topics["images"],
            "topic_enriched": env.topics["enriched"],
            "topic_dlq": env.topics["dlq"],
            "topic_labels": env.topics["labels"],
            "topic_models": env.env["CATALOG_TOPIC_MODELS"],
            "topic_partitions": config.partitions,
            "milvus_uri": env.env["CATALOG_MILVUS_URI"],
            "batch_max_size": config.batch_size,
            "batch_max_wait_s": config.batch_wait_s,
            "torch_threads": config.torch_threads,
            "device": config.device,
        }
    )


def _delete_run_topics(settings: Settings, tag: str, progress: Progress) -> None:
    """On a broker we did not start, delete every topic of this run (its name carries the run's tag)."""

    async def go() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        from streams.kafka_clients import client_kwargs

        admin = AIOKafkaAdminClient(**client_kwargs(settings))
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if tag in t]
            if mine:
                await admin.delete_topics(mine)
            return mine
        finally:
            await admin.close()

    try:
        progress(f"deleted the run's topics: {', '.join(asyncio.run(go())) or 'none'}")
    except Exception as exc:  # cleanup must not hide the run's result
        progress(f"could not delete the run's topics (tag {tag}): {exc}")


# ----------------------------------------------------------------------------- images and models


def _upload_images(config: StreamBenchConfig, settings: Settings) -> list[str]:
    """Generated seller (or plain) photos of Fashion-MNIST test items, as the uploads carry them (JPEG, base64)."""
    from processors.samples import fashion_mnist_samples
    from streams.commands.produce import jpeg_b64

    pool = min(config.image_pool, config.events)
    size = settings.model_image_size * 2  # as ``catalog produce`` makes them
    samples = fashion_mnist_samples("test", pool, size, config.style, config.seed)  # type: ignore[arg-type]
    return [jpeg_b64(px) for px in samples.pixels]


class _ModelsOnly:
    """``infra.bench.models_only`` in a session of its own with the worker's environment, as the worker runs."""

    def __init__(self, env: WorkerEnv, work: Path, images_b64: list[str], config: StreamBenchConfig) -> None:
        self.env = env
        self.images_file = work / "models-only-images.json"
        self.images_file.write_text(json.dumps(images_b64[: config.models_only_images]))
        self.config = config
        self.facts: dict[str, Any] = {}

    def measure(self) -> float:
        cmd = [sys.executable, "-m", "infra.bench.models_only", "--images-file", str(self.images_file),
               "--count", str(self.config.models_only_images), "--batch", str(self.config.batch_size)]  # fmt: skip
        done = subprocess.run(
            cmd, env=self.env.env, cwd=REPO, capture_output=True, text=True, timeout=self.config.timeout_s,
            check=False, start_new_session=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"the models-only measure failed ({done.returncode}):\n{done.stderr[-3000:]}")
        self.facts = json.loads(done.stdout.strip().splitlines()[-1])
        return float(self.facts["images_per_s"])


# ----------------------------------------------------------------------------- traffic


@dataclass
class _Phase:
    name: str
    sent: Sent
    complete: bool
    target_rate: float | None = None


async def _traffic(
    config: StreamBenchConfig,
    settings: Settings,
    env: WorkerEnv,
    images_b64: list[str],
    deadline: float,
    progress: Progress,
    worker: WorkerProcess,
) -> tuple[list[_Phase], AnswerCollector]:
    from aiokafka import AIOKafkaProducer

    from streams.kafka_clients import client_kwargs

    kwargs = client_kwargs(settings)
    collector = AnswerCollector(kwargs, settings.topic_enriched, settings.topic_dlq)
    producer = AIOKafkaProducer(**kwargs, acks="all", max_request_size=16_000_000, linger_ms=5)
    await collector.start()
    await producer.start()
    uploads = Uploads(images_b64, _tag(env))
    phases: list[_Phase] = []

    def waiting(name: str, total: int) -> Callable[[int], None]:
        def say(done: int) -> None:
            alive = "" if worker.alive() else " (the worker has exited!)"
            progress(f"{name}: {done:,}/{total:,} answered{alive}")

        return say

    try:
        progress(f"full load: publishing {config.events:,} uploads at once")
        sent = await publish(producer, settings.topic_images, uploads, config.events)
        progress(f"published at {sent.rate:,.0f} events/s; waiting for every answer")
        ok = await collector.wait_for(sent.submitted_ms, config.stall_s, deadline, waiting("full load", config.events))
        phases.append(_Phase("full_load", sent, ok))
        if not ok:
            raise BenchError(f"full load: outputs stopped coming\n{worker.log_tail(3000)}")
        stamps = [collector.answers[e].timestamp_ms for e in sent.submitted_ms]
        rate = st.steady_rate(stamps, config.warmup_fraction, min_warmup=config.batch_size).events_per_s
        target = rate * config.paced_fraction
        count = config.paced_events or max(
            2 * config.batch_size, min(config.events // 2, int(target * config.paced_max_s))
        )
        progress(f"half load: {count:,} uploads paced at {target:.1f}/s ({config.paced_fraction:.0%} of {rate:.1f})")
        sent = await publish(producer, settings.topic_images, uploads, count, rate=target)
        ok = await collector.wait_for(sent.submitted_ms, config.stall_s, deadline, waiting("half load", count))
        phases.append(_Phase("half_load", sent, ok, round(target, 1)))
        if not ok:
            raise BenchError(f"half load: outputs stopped coming\n{worker.log_tail(3000)}")
    finally:
        await producer.stop()
        await collector.stop()
    return phases, collector


# ----------------------------------------------------------------------------- report


def _phase_report(
    phase: _Phase, collector: AnswerCollector, config: StreamBenchConfig, origin_ms: int
) -> tuple[dict[str, Any], list[st.Batch], list[float]]:
    answers = {e: collector.answers[e] for e in phase.sent.submitted_ms if e in collector.answers}
    stamps = [a.timestamp_ms for a in answers.values()]
    latencies = [float(a.timestamp_ms - phase.sent.submitted_ms[e]) for e, a in answers.items()]
    batches = st.batches_from_outputs((a.timestamp_ms, a.timings) for a in answers.values() if a.timings)
    steady = st.steady_rate(stamps, config.warmup_fraction, min_warmup=config.batch_size) if len(stamps) > 2 else None
    out = {
        "produced": len(phase.sent.submitted_ms),
        "producer_events_per_s": phase.sent.rate,
        "target_events_per_s": phase.target_rate,
        "answered": len(answers),
        "enriched": sum(1 for a in answers.values() if a.timings is not None),
        "dead_lettered": sum(1 for a in answers.values() if a.timings is None),
        "complete": phase.complete,
        "first_output_s": round((min(stamps) - origin_ms) / 1000.0, 3) if stamps else None,
        "last_output_s": round((max(stamps) - origin_ms) / 1000.0, 3) if stamps else None,
        "steady": steady.as_dict() if steady else None,
        "warmup_ends_s": round((steady.start_ms - origin_ms) / 1000.0, 3) if steady else None,
        "latency_ms": st.latency_summary(latencies),
        "batch_sizes": st.size_summary(batches, config.batch_size),
        "stage_ms_per_batch": st.stage_summary(batches),
        "throughput_series": st.rate_series(stamps, origin_ms) if stamps else [],
    }
    return out, batches, latencies


def _report(
    config: StreamBenchConfig,
    settings: Settings,
    traffic: tuple[list[_Phase], AnswerCollector],
    *,
    models: tuple[float, float],
    models_facts: dict[str, Any],
    worker_peak: int | None,
    rss: list[tuple[float, int]],
    batch_metric: tuple[float, float],
    gallery_s: float,
    origins: dict[str, str],
) -> dict[str, Any]:
    phases, collector = traffic
    origin_ms = phases[0].sent.first_send_ms
    report_phases: dict[str, Any] = {}
    latencies: dict[str, list[float]] = {}
    full_batches: list[st.Batch] = []
    for phase in phases:
        report_phases[phase.name], batches, latencies[phase.name] = _phase_report(phase, collector, config, origin_ms)
        if phase.name == "full_load":
            full_batches = batches
    e2e = report_phases["full_load"]["steady"]["events_per_s"]
    models_mean = (models[0] + models[1]) / 2.0
    computes = [st.compute_ms(b.timings_ms) for b in full_batches]
    compute = round(statistics.median(computes), 1) if computes else None
    half = report_phases.get("half_load", {})
    bound = (
        st.within_latency_bound(half["latency_ms"]["p99"], config.batch_wait_s, compute)
        if compute is not None and half.get("latency_ms", {}).get("p99") is not None
        else None
    )
    return {
        "bench": "stream",
        "headline": {
            "end_to_end_events_per_s": e2e,
            "models_only_images_per_s": round(models_mean, 1),
            "ratio": round(e2e / models_mean, 3),
        },
        "models_only": {
            "before_images_per_s": round(models[0], 1),
            "after_images_per_s": round(models[1], 1),
            "in_worker_during_full_load_images_per_s": st.models_rate_in_run(full_batches),
            "images": config.models_only_images,
            "batch_size": config.batch_size,
            "what": "run_models (embedder + quality) on the run's own uploads decoded as the worker decodes them, "
            "in a process started like the worker (own session, the worker's environment: device, torch threads); "
            "before the worker started and after it stopped",
        },
        "phases": report_phases,
        "half_load_latency_bound": bound,
        "compute_ms_per_batch_median": compute,
        "worker": {
            "peak_rss_bytes": worker_peak,
            "peak_rss_mib": round(worker_peak / 2**20, 1) if worker_peak else None,
            "rss_series_mib": [(t, round(b / 2**20, 1)) for t, b in rss[:: max(1, len(rss) // 400)]],
            "batches_seen_by_metrics": int(batch_metric[1]),
            "mean_batch_size_by_metrics": round(batch_metric[0] / batch_metric[1], 1) if batch_metric[1] else None,
        },
        "answers": {"duplicates": collector.duplicates, "unreadable": collector.unreadable},
        "gallery": {"rows": config.gallery, "style": config.style, "load_s": round(gallery_s, 1)},
        "config": asdict(config),
        "infrastructure": origins,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            **_torch_facts(config.device),
            "torch_threads": models_facts.get("torch_threads"),  # as the worker's environment sets them
        },
        "model": settings.model_ref,
        "_latencies_ms": latencies,  # raw, for the plot; dropped from the saved JSON
    }


def _torch_facts(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"torch": torch.__version__}
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts
