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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.bench.cpu import CpuSample, cpu_in_window, cpu_sampler, ratio_factors
from infra.bench.memory import children_peak_rss, peak_rss_bytes, rss_sampler
from infra.bench.quiet import idle_cores, wait_until_quiet
from infra.bench.run_setup import REPO, BenchError, ModelsOnly, Progress, run_tag, start_run, upload_images
from infra.bench.stream_traffic import AnswerCollector, Sent, Uploads, publish, start_clients, stop_clients
from infra.harness.worker_process import WorkerEnv, WorkerProcess
from processors import stream_stats as st
from streams.settings import Settings


@dataclass(frozen=True)
class StreamBenchConfig:
    """What one run measures; every count and wait is bounded."""

    events: int = 5000
    gallery: int = 10_000
    style: str = "seller"
    milvus: str = "lite"  # lite: a Milvus Lite file of the worker's; server: a real Milvus 2.3 server of the run's
    milvus_time_tick_ms: int | None = None  # the server's proxy time tick (None: the runner's, ServerConfig's)
    device: str = "cpu"
    batch_size: int = Settings.model_fields["batch_max_size"].default  # the worker's default
    forward_batch_max: int | None = None  # images per forward pass (None: the worker's default for the device)
    batch_wait_s: float = 0.5
    torch_threads: int = 1
    inference_lanes: int | None = None  # batches in the models at once (None: the worker's default)
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
    index_settle_quiet_s: float = 30.0  # after the gallery load: no index rows pending this long (see gallery_loader)
    index_settle_limit_s: float = 300.0
    # before half load: the machine (this process left out) quiet for phase_quiet_s (0: no wait), quiet meaning
    # under phase_quiet_cores, or under its idle level before the full load + phase_quiet_margin if that is higher
    phase_quiet_s: float = 5.0
    phase_quiet_cores: float = 0.35
    phase_quiet_margin: float = 0.25
    phase_quiet_limit_s: float = 120.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.events < 2 * self.batch_size or self.gallery < 1:
            raise ValueError("events must be at least two batches and gallery at least 1")
        if self.milvus not in ("lite", "server") or self.style not in ("seller", "plain"):
            raise ValueError("milvus is lite or server, style seller or plain")
        if not 0.0 < self.paced_fraction <= 1.0 or not 0.0 <= self.warmup_fraction < 0.5:
            raise ValueError("paced_fraction in (0, 1], warmup_fraction in [0, 0.5)")


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
        run = start_run(
            stack, config, settings, bootstrap=bootstrap, workdir=workdir, prefix="bench-stream-", progress=progress
        )
        work, env, run_settings = run.work, run.env, run.settings
        kafka_origin, milvus_origin = run.kafka_origin, run.milvus_origin

        progress(f"generating {min(config.image_pool, config.events)} {config.style} upload images")
        images_b64 = upload_images(config, run_settings)
        models = ModelsOnly(env, work, images_b64, config)
        _measure_when_quiet(models, config, progress, "before the worker")

        progress(f"loading a gallery of {config.gallery:,} into {milvus_origin}")
        t0 = time.monotonic()
        gallery_load = _load_gallery(env, config)
        gallery_s = time.monotonic() - t0

        worker = WorkerProcess(env, name="bench")
        stack.callback(worker.stop)
        worker.start(timeout=config.worker_ready_s)
        assert worker.pid is not None
        sampler = rss_sampler(worker.pid).start()
        stack.callback(sampler.stop)
        cpu = cpu_sampler(worker.pid).start()
        stack.callback(cpu.stop)
        progress(f"worker pid {worker.pid} ready; log {worker.log_path}")

        deadline = started + config.timeout_s
        phases = asyncio.run(_traffic(config, run_settings, env, images_b64, deadline, progress, worker))
        worker_peak = peak_rss_bytes(worker.pid)
        children_peaks = children_peak_rss(worker.pid)  # the Lite child: part of what a worker costs
        batch_metric = (worker.metric("catalog_batch_size_sum"), worker.metric("catalog_batch_size_count"))
        sampler.stop()
        cpu.stop()
        worker.stop()

        _measure_when_quiet(models, config, progress, "after, worker stopped")
        report = _report(
            config,
            run_settings,
            phases,
            models_runs=models.runs,
            worker_peak=worker_peak,
            children_peaks=children_peaks,
            rss=sampler.samples,
            cpu=cpu.samples,
            batch_metric=batch_metric,
            gallery=(gallery_s, gallery_load),
            origins={"kafka": kafka_origin, "milvus": milvus_origin},
        )
    report["run_tag"] = run_tag(env)
    report["worker"]["pid"] = worker.pid
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["machine"]["load_average_before"] = [round(x, 2) for x in load_before]
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


# ----------------------------------------------------------------------------- infrastructure


def _measure_when_quiet(models: ModelsOnly, config: StreamBenchConfig, progress: Progress, when: str) -> None:
    """The models alone on a machine as quiet as the phases start from.

    Why: the ratio's denominator moved 528 -> 685 images/s within one run when the first measure
    met the just-started broker's warm-up; a quiet machine is the models' own rate.
    """
    quiet = None
    if config.phase_quiet_s > 0:
        wait = wait_until_quiet(config.phase_quiet_s, config.phase_quiet_cores, config.phase_quiet_limit_s)
        quiet = asyncio.run(wait)
    rate = models.measure()
    models.runs[-1]["quiet_wait_before"] = quiet
    waited = "" if quiet is None else f"; after {quiet['waited_s']} s for a quiet machine"
    progress(f"models only: {rate:.1f} images/s ({when}{waited})")


def _load_gallery(env: WorkerEnv, config: StreamBenchConfig) -> dict[str, Any]:
    """``infra.bench.gallery_loader`` in a process of its own, with the worker's environment; its JSON line."""
    cmd = [
        *(sys.executable, "-m", "infra.bench.gallery_loader", "--limit", str(config.gallery), "--style", config.style),
        *("--settle-quiet-s", str(config.index_settle_quiet_s), "--settle-limit-s", str(config.index_settle_limit_s)),
    ]
    done = subprocess.run(
        cmd, env=env.env, cwd=REPO, capture_output=True, text=True, timeout=config.timeout_s, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"loading the gallery failed ({done.returncode}):\n{done.stderr[-3000:]}")
    loaded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


# ----------------------------------------------------------------------------- traffic


@dataclass
class _Phase:
    name: str
    sent: Sent
    complete: bool
    target_rate: float | None = None
    quiet_wait_before: dict[str, Any] | None = None  # how long the machine took to go quiet before it


async def _traffic(
    config: StreamBenchConfig,
    settings: Settings,
    env: WorkerEnv,
    images_b64: list[str],
    deadline: float,
    progress: Progress,
    worker: WorkerProcess,
) -> tuple[list[_Phase], AnswerCollector]:
    collector, producer = await start_clients(settings, AnswerCollector)
    uploads = Uploads(images_b64, run_tag(env))
    phases: list[_Phase] = []

    def waiting(name: str, total: int) -> Callable[[int], None]:
        def say(done: int) -> None:
            alive = "" if worker.alive() else " (the worker has exited!)"
            progress(f"{name}: {done:,}/{total:,} answered{alive}")

        return say

    try:
        idle = await idle_cores(2.0) if config.phase_quiet_s > 0 else 0.0  # the worker ready, nothing sent yet
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
        quiet = None
        if config.phase_quiet_s > 0:
            limit = min(config.phase_quiet_limit_s, max(0.0, deadline - time.monotonic() - config.stall_s))
            threshold = max(config.phase_quiet_cores, idle + config.phase_quiet_margin)
            quiet = {
                **await wait_until_quiet(config.phase_quiet_s, threshold, limit),
                "idle_cores_before": round(idle, 2),
            }
            state = "quiet" if quiet["quiet"] else f"not quiet (last {quiet['last_cores']} cores); going on"
            progress(f"between the phases: {state} after {quiet['waited_s']} s (Milvus compacting, the broker)")
        progress(f"half load: {count:,} uploads paced at {target:.1f}/s ({config.paced_fraction:.0%} of {rate:.1f})")
        sent = await publish(producer, settings.topic_images, uploads, count, rate=target)
        ok = await collector.wait_for(sent.submitted_ms, config.stall_s, deadline, waiting("half load", count))
        phases.append(_Phase("half_load", sent, ok, round(target, 1), quiet))
        if not ok:
            raise BenchError(f"half load: outputs stopped coming\n{worker.log_tail(3000)}")
    finally:
        await stop_clients(collector, producer)
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
        "quiet_wait_before": phase.quiet_wait_before,
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
    models_runs: list[dict[str, Any]],  # the models-only measures: before the worker, after it
    worker_peak: int | None,
    children_peaks: dict[int, int],
    rss: list[tuple[float, int]],
    cpu: list[CpuSample],
    batch_metric: tuple[float, float],
    gallery: tuple[float, dict[str, Any]],
    origins: dict[str, str],
) -> dict[str, Any]:
    phases, collector = traffic
    origin_ms = phases[0].sent.first_send_ms
    children_peak = sum(children_peaks.values())
    report_phases: dict[str, Any] = {}
    latencies: dict[str, list[float]] = {}
    full_batches: list[st.Batch] = []
    for phase in phases:
        report_phases[phase.name], batches, latencies[phase.name] = _phase_report(phase, collector, config, origin_ms)
        steady = report_phases[phase.name].get("steady") or {}
        if steady.get("start_ms") is not None and steady.get("end_ms") is not None:
            report_phases[phase.name]["cpu"] = cpu_in_window(
                cpu, steady["start_ms"], steady["end_ms"], steady.get("events") or 0
            )
        if phase.name == "full_load":
            full_batches = batches
    e2e = report_phases["full_load"]["steady"]["events_per_s"]
    models = [float(r["images_per_s"]) for r in models_runs]
    models_facts = models_runs[-1]
    models_mean = statistics.fmean(models)
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
            "ratio_factors": ratio_factors(report_phases["full_load"].get("cpu"), models_runs),
        },
        "models_only": {
            "before_images_per_s": round(models[0], 1),
            "after_images_per_s": round(models[1], 1),
            "in_worker_during_full_load_images_per_s": st.models_rate_in_run(
                full_batches, models_facts.get("inference_lanes") or 1
            ),
            "images": config.models_only_images,
            "batch_size": config.batch_size,
            "forward_batch": settings.forward_batch(),  # images per forward pass, as the worker ran them
            "quiet_wait_before": [run.get("quiet_wait_before") for run in models_runs],
            "what": "run_models (embedder + quality) on the run's own uploads decoded as the worker decodes them, "
            "in a process started like the worker (own session, the worker's environment: device, inference lanes, "
            "torch threads per lane); "
            "before the worker started and after it stopped",
        },
        "phases": report_phases,
        "half_load_latency_bound": bound,
        "compute_ms_per_batch_median": compute,
        "worker": {
            "peak_rss_bytes": worker_peak,
            "peak_rss_mib": round(worker_peak / 2**20, 1) if worker_peak else None,
            "children_peak_rss_bytes": children_peak,
            "children_peak_rss_mib": round(children_peak / 2**20, 1),
            "children": len(children_peaks),
            "rss_series_mib": [(t, round(b / 2**20, 1)) for t, b in rss[:: max(1, len(rss) // 400)]],
            "batches_seen_by_metrics": int(batch_metric[1]),
            "mean_batch_size_by_metrics": round(batch_metric[0] / batch_metric[1], 1) if batch_metric[1] else None,
        },
        "answers": {"duplicates": collector.duplicates, "unreadable": collector.unreadable},
        "gallery": {
            "rows": config.gallery,
            "style": config.style,
            "load_s": round(gallery[0], 1),  # the load and the wait for its index to settle
            **{k: gallery[1].get(k) for k in ("index_ready_s", "index_settled_s", "pending_index_rows_at_start")},
        },
        "config": asdict(config),
        "infrastructure": origins,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            **_torch_facts(config.device),
            "torch_threads": models_facts.get("torch_threads"),  # as the worker's environment sets them
            "inference_lanes": models_facts.get("inference_lanes"),
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
