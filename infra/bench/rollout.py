"""``catalog bench rollout``: a model rollout under a steady stream, measured end to end in one run.

One run, one machine, the stream bench's machinery (``infra.bench.run_setup``: broker, Milvus, worker
environment, upload images, the models-only yardstick in a process started like the worker):

1. the target model alone, embedder only (what the re-index runs), before the worker starts;
2. a gallery of ``gallery`` items loaded by ``catalog gallery load`` (into the gallery topic, which
   the re-index replays, and the served model's collection);
3. one real worker; uploads paced at ``rate``/s from then to the end (same producer rate throughout);
4. ``baseline_s`` of that steady stream, then ``catalog models activate <to>``; the worker's metrics
   are polled every ``poll_s`` (re-index rows, lag, switched partitions, rollouts completed) until the
   rollout completes (the alias moved), then ``tail_s`` more of the stream;
5. every upload's answer is awaited; the target model alone once more, with the worker stopped.

Reported: re-index images/s (from ``catalog_reindex_rows_total`` over time) against the model-only
rate; the longest time without an enriched output around the switch (``AROUND_MS`` before the first
partition switched to as long after the alias move) and from the activation to the alias move, and
the whole rollout time; delivered events/s and latency of the uploads submitted before the activation
against those submitted during the re-index; the model sequence per input partition.

Everything started here is stopped here by PID (worker, broker, Milvus server), also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.bench.run_setup import BenchError, ModelsOnly, Progress, run_tag, start_run, upload_images
from infra.bench.stream import StreamBenchConfig
from infra.bench.stream_traffic import AnswerCollector, Sent, Uploads, publish, start_clients, stop_clients
from infra.harness.worker_process import WorkerEnv, WorkerProcess
from processors import stream_stats as st
from streams.settings import Settings

AROUND_MS = (
    2000  # the switch gap is looked for from this long before the first partition switched to after the alias move
)


@dataclass(frozen=True)
class RolloutBenchConfig:
    """What one run measures; every count and wait is bounded."""

    gallery: int = 60_000
    to: str = "student-gamma0@2"
    rate: float = 20.0  # uploads/s, the same before and during the rollout
    events: int = 100_000  # the most uploads the run publishes
    milvus: str = "lite"
    milvus_time_tick_ms: int | None = None  # with milvus = "server": its proxy time tick (None: the runner's)
    style: str = "seller"
    device: str = "cpu"
    batch_size: int = Settings.model_fields["batch_max_size"].default  # the worker's default
    batch_wait_s: float = 0.5
    torch_threads: int = 1
    inference_lanes: int | None = None  # batches in the models at once (None: the worker's default)
    partitions: int = 4
    baseline_s: float = 60.0  # steady stream before the activation
    tail_s: float = 10.0  # steady stream after the alias moved
    warmup_s: float = 5.0  # first seconds of the baseline left out (the worker's first batches)
    poll_s: float = 0.5
    models_only_images: int = 512
    rollout_timeout_s: float = 3600.0
    stall_s: float = 120.0
    timeout_s: float = 7200.0

    def __post_init__(self) -> None:
        if self.gallery < 1 or self.rate <= 0 or self.events < 2:
            raise ValueError("gallery at least 1, rate positive, events at least 2")
        if self.baseline_s <= self.warmup_s or self.tail_s < 0 or self.poll_s <= 0:
            raise ValueError("baseline_s must exceed warmup_s; tail_s >= 0; poll_s > 0")
        if "@" not in self.to:
            raise ValueError(f"--to takes name@version, not {self.to!r}")

    def stream(self) -> StreamBenchConfig:
        """The stream bench's view of this run (worker variables, images, models-only measure)."""
        return StreamBenchConfig(
            events=max(self.events, 2 * self.batch_size), gallery=self.gallery, style=self.style, milvus=self.milvus,
            milvus_time_tick_ms=self.milvus_time_tick_ms, device=self.device, batch_size=self.batch_size,
            batch_wait_s=self.batch_wait_s, torch_threads=self.torch_threads, inference_lanes=self.inference_lanes,
            partitions=self.partitions,
            models_only_images=self.models_only_images, image_pool=min(2000, self.events),
            stall_s=self.stall_s, timeout_s=self.timeout_s,
        )  # fmt: skip


class _ModelAnswers(AnswerCollector):
    """The stream bench's collector, also keeping each enriched answer's input partition, offset and model."""

    def __init__(self, client_kwargs: dict[str, Any], enriched: str, dlq: str) -> None:
        super().__init__(client_kwargs, enriched, dlq)
        self.served: dict[str, tuple[int, int, str]] = {}

    def _keep(self, topic: str, timestamp_ms: int, value: bytes | None) -> None:
        super()._keep(topic, timestamp_ms, value)
        if topic != self._enriched:
            return
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            body = json.loads(value or b"")
            model, source = body.get("model") or {}, body["source"]
            entry = (int(source["partition"]), int(source["offset"]), f"{model.get('id')}@{model.get('version')}")
            self.served.setdefault(body["event_id"], entry)


@dataclass
class _Timeline:
    """The worker's rollout metrics over time (epoch ms), and the moments they mark."""

    samples: list[dict[str, float]] = field(default_factory=list)
    activated_ms: int = 0
    caught_up_ms: int | None = None  # the first partition switched: the re-index had caught up
    done_ms: int | None = None  # catalog_rollouts_completed_total went up: every partition switched, alias moved

    def sample(self, worker: WorkerProcess, env: WorkerEnv) -> dict[str, float]:
        s = {
            "t_ms": time.time() * 1000.0,
            "rows": worker.metric("catalog_reindex_rows_total"),
            "lag_images": worker.metric("catalog_reindex_lag", topic=env.topics["images"]),
            "lag_gallery": worker.metric("catalog_reindex_lag", topic=env.topics["gallery"]),
            "switched": worker.metric("catalog_rollout_partitions_switched_total"),
            "completed": worker.metric("catalog_rollouts_completed_total"),
        }
        self.samples.append(s)
        if self.caught_up_ms is None and s["switched"] > 0:
            self.caught_up_ms = int(s["t_ms"])
        if self.done_ms is None and s["completed"] > 0:
            self.done_ms = int(s["t_ms"])
        return s


def run_rollout_bench(
    config: RolloutBenchConfig,
    settings: Settings,
    *,
    bootstrap: str | None = None,
    workdir: Path | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run every phase and return the report (JSON-ready); raises ``BenchError`` when a phase fails."""
    started = time.monotonic()
    scfg = config.stream()
    with contextlib.ExitStack() as stack:
        run = start_run(
            stack, scfg, settings, bootstrap=bootstrap, workdir=workdir, prefix="bench-rollout-", progress=progress,
            extra_vars=lambda work: {"CATALOG_ACTIVATION_LOG": str(work / "activations.jsonl")},
        )  # fmt: skip
        work, env, run_settings = run.work, run.env, run.settings
        kafka_origin, milvus_origin = run.kafka_origin, run.milvus_origin
        served = env.env.get("CATALOG_MODEL_REF") or settings.model_ref
        if served == config.to:
            raise BenchError(f"the worker already serves {config.to}: --to must name another model")

        progress(f"generating {scfg.image_pool} {config.style} upload images")
        images_b64 = upload_images(scfg, run_settings)
        # the re-index runs the target's embedder alone (quality is kept, not recomputed), one batch at a time
        target_env = copy.copy(env)
        target_env.env = {
            **env.env,
            "CATALOG_MODEL_REF": config.to,
            "CATALOG_QUALITY_MODE": "off",
            "CATALOG_INFERENCE_LANES": "1",
        }
        models = ModelsOnly(target_env, work, images_b64, scfg)
        models_before = models.measure()
        progress(f"{config.to} alone: {models_before:.1f} images/s (before the worker)")

        progress(f"catalog gallery load: {config.gallery:,} items into the gallery topic and {milvus_origin}")
        t0 = time.monotonic()
        env.run("gallery", "load", "--limit", str(config.gallery), "--style", config.style, timeout=config.timeout_s)
        gallery_s = time.monotonic() - t0

        worker = WorkerProcess(env, name="bench-rollout")
        stack.callback(worker.stop)
        worker.start(timeout=scfg.worker_ready_s)
        progress(f"worker pid {worker.pid} ready, serving {served}; log {worker.log_path}")
        deadline = started + config.timeout_s
        sent, collector, timeline = asyncio.run(
            _traffic(config, run_settings, env, images_b64, worker, deadline, progress)
        )
        worker.stop()
        models_after = models.measure()
        progress(f"{config.to} alone: {models_after:.1f} images/s (after, worker stopped)")
    report = _report(config, served, sent, collector, timeline, (models_before, models_after), models.facts)
    report.update(
        gallery={"rows": config.gallery, "style": config.style, "load_s": round(gallery_s, 1)},
        infrastructure={"kafka": kafka_origin, "milvus": milvus_origin},
        run_tag=run_tag(env),
        worker={"pid": worker.pid, "served_before": served},
        wall_s=round(time.monotonic() - started, 1),
    )
    return report


async def _traffic(
    config: RolloutBenchConfig,
    settings: Settings,
    env: WorkerEnv,
    images_b64: list[str],
    worker: WorkerProcess,
    deadline: float,
    progress: Progress,
) -> tuple[Sent, _ModelAnswers, _Timeline]:
    """The paced stream from start to end; the activation after ``baseline_s``; metrics polled meanwhile."""
    collector, producer = await start_clients(settings, _ModelAnswers)
    uploads = Uploads(images_b64, run_tag(env))
    sent = Sent()
    stop = asyncio.Event()

    async def stream() -> None:
        chunk = max(1, int(config.rate))  # about a second of uploads per call, so the stream stops within a second
        begin = time.monotonic()
        while not stop.is_set() and len(sent.submitted_ms) < config.events:
            due = begin + len(sent.submitted_ms) / config.rate  # the schedule runs on across chunks
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            part = await publish(
                producer,
                settings.topic_images,
                uploads,
                min(chunk, config.events - len(sent.submitted_ms)),
                config.rate,
            )
            sent.submitted_ms.update(part.submitted_ms)
            sent.first_send_ms = sent.first_send_ms or part.first_send_ms
            sent.last_send_ms = part.last_send_ms

    timeline = _Timeline()
    streaming = asyncio.create_task(stream())
    try:
        progress(f"steady stream at {config.rate}/s for {config.baseline_s:.0f} s before the activation")
        await asyncio.sleep(config.baseline_s)
        out = await asyncio.to_thread(env.run, "models", "activate", config.to, "--by", "bench-rollout")
        timeline.activated_ms = int(time.time() * 1000)  # the command publishes just before it returns
        progress(f"activated {config.to}: {out.strip()[:200]}")
        last_report = time.monotonic()
        started = time.monotonic()
        while timeline.done_ms is None:
            if streaming.done():
                streaming.result()
            if not worker.alive():
                raise BenchError(f"the worker exited during the rollout\n{worker.log_tail(3000)}")
            if time.monotonic() - started > config.rollout_timeout_s or time.monotonic() > deadline:
                raise BenchError(
                    f"the rollout did not complete within {config.rollout_timeout_s:.0f} s\n{worker.log_tail(3000)}"
                )
            s = await asyncio.to_thread(timeline.sample, worker, env)
            if time.monotonic() - last_report >= 10.0:
                progress(f"re-index: {s['rows']:,.0f} rows, lag images {s['lag_images']:.0f} gallery "
                         f"{s['lag_gallery']:.0f}, {s['switched']:.0f} partitions switched")  # fmt: skip
                last_report = time.monotonic()
            await asyncio.sleep(config.poll_s)
        progress(
            f"rollout done in {(timeline.done_ms - timeline.activated_ms) / 1000:.1f} s; "
            f"{config.tail_s:.0f} s more stream"
        )
        end_at = time.monotonic() + config.tail_s
        while time.monotonic() < end_at and not streaming.done():
            await asyncio.to_thread(timeline.sample, worker, env)
            await asyncio.sleep(config.poll_s)
        stop.set()
        await streaming
        progress(f"published {len(sent.submitted_ms):,} uploads; waiting for every answer")

        def say(done: int) -> None:
            progress(f"{done:,}/{len(sent.submitted_ms):,} answered")

        if not await collector.wait_for(list(sent.submitted_ms), config.stall_s, deadline, say):
            raise BenchError(f"outputs stopped coming\n{worker.log_tail(3000)}")
        await asyncio.sleep(1.0)  # a second output of a re-processed event, if any, is read too
    finally:
        stop.set()
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        await stop_clients(collector, producer)
    return sent, collector, timeline


# ----------------------------------------------------------------------------- report


def longest_gap_ms(stamps_ms: list[int], start_ms: int, end_ms: int) -> int:
    """The longest time in ``[start_ms, end_ms]`` without an output (the window's edges count as bounds)."""
    inside = sorted(t for t in stamps_ms if start_ms <= t <= end_ms)
    points = [start_ms, *inside, end_ms]
    return max(b - a for a, b in zip(points, points[1:], strict=False)) if end_ms > start_ms else 0


def model_runs(served: dict[str, tuple[int, int, str]]) -> dict[int, list[str]]:
    """Per input partition, the models of its outputs in input-offset order, consecutive repeats merged."""
    runs: dict[int, list[str]] = {}
    for partition, _offset, model in sorted(served.values()):
        seq = runs.setdefault(partition, [])
        if not seq or seq[-1] != model:
            seq.append(model)
    return runs


def _window(sent: Sent, collector: AnswerCollector, start_ms: int, end_ms: int) -> dict[str, Any]:
    """The uploads submitted in ``[start_ms, end_ms)``: produced and delivered events/s, latency."""
    ids = [e for e, t in sent.submitted_ms.items() if start_ms <= t < end_ms]
    answered = [e for e in ids if e in collector.answers]
    latencies = [float(collector.answers[e].timestamp_ms - sent.submitted_ms[e]) for e in answered]
    span_s = max(1e-3, (end_ms - start_ms) / 1000.0)
    out_in_window = [a.timestamp_ms for a in collector.answers.values() if start_ms <= a.timestamp_ms < end_ms]
    return {
        "seconds": round(span_s, 1),
        "produced": len(ids),
        "answered": len(answered),
        "produced_events_per_s": round(len(ids) / span_s, 2),
        "delivered_events_per_s": round(len(out_in_window) / span_s, 2),
        "latency_ms": st.latency_summary(latencies),
    }


def _reindex_rate(timeline: _Timeline) -> dict[str, Any]:
    """Rows/s from the first re-index row to the last (and counted from the activation, model load included)."""
    rows = [(s["t_ms"], s["rows"]) for s in timeline.samples]
    total = max((r for _, r in rows), default=0.0)
    first = next(((t, r) for t, r in rows if r > 0), None)
    last = next(((t, r) for t, r in rows if r >= total), None)
    if first is None or last is None or last[0] <= first[0]:
        return {"rows": total, "images_per_s": None, "images_per_s_from_activation": None}
    return {
        "rows": total,
        "images_per_s": round((last[1] - first[1]) / ((last[0] - first[0]) / 1000.0), 1),
        "images_per_s_from_activation": round(total / ((last[0] - timeline.activated_ms) / 1000.0), 1),
        "first_row_s": round((first[0] - timeline.activated_ms) / 1000.0, 1),
        "last_row_s": round((last[0] - timeline.activated_ms) / 1000.0, 1),
    }


def _report(
    config: RolloutBenchConfig,
    served_before: str,
    sent: Sent,
    collector: _ModelAnswers,
    timeline: _Timeline,
    models: tuple[float, float],
    models_facts: dict[str, Any],
) -> dict[str, Any]:
    assert timeline.done_ms is not None
    act, done = timeline.activated_ms, timeline.done_ms
    caught = timeline.caught_up_ms or done
    origin = sent.first_send_ms
    stamps = [a.timestamp_ms for a in collector.answers.values() if a.timings is not None]
    models_mean = (models[0] + models[1]) / 2.0
    reindex = _reindex_rate(timeline)
    baseline = _window(sent, collector, origin + int(config.warmup_s * 1000), act)
    during = _window(sent, collector, act, caught)
    runs = model_runs(collector.served)
    switch_window = (max(act, caught - AROUND_MS), min(done + AROUND_MS, max(stamps, default=done)))
    rel = lambda ms: round((ms - origin) / 1000.0, 2)  # noqa: E731
    ratio = lambda a, b: round(a / b, 3) if a and b else None  # noqa: E731
    return {
        "bench": "rollout",
        "headline": {
            "reindex_images_per_s": reindex["images_per_s"],
            "models_only_images_per_s": round(models_mean, 1),
            "reindex_vs_models_only": ratio(reindex["images_per_s"], models_mean),
            "switch_gap_s": round(longest_gap_ms(stamps, *switch_window) / 1000.0, 2),
            "switch_window_s": [rel(switch_window[0]), rel(switch_window[1])],
            "rollout_gap_s": round(longest_gap_ms(stamps, act, done) / 1000.0, 2),
            "baseline_gap_s": round(longest_gap_ms(stamps, origin + int(config.warmup_s * 1000), act) / 1000.0, 2),
            "rollout_s": round((done - act) / 1000.0, 1),
            "delivered_during_vs_without_reindex": ratio(
                during["delivered_events_per_s"], baseline["delivered_events_per_s"]
            ),
        },
        "reindex": reindex,
        "models_only": {
            "model": config.to,
            "before_images_per_s": round(models[0], 1),
            "after_images_per_s": round(models[1], 1),
            "what": "the target model's embedder (what the re-index runs; quality scores are carried over) on the "
            "run's uploads, in a process started like the worker; before the worker started and after it stopped",
            "torch_threads": models_facts.get("torch_threads"),
        },
        "enrichment": {
            "without_reindex": baseline,
            "during_reindex": during,
            "switching": _window(sent, collector, caught, done),
            "after": _window(sent, collector, done, sent.last_send_ms + 1),
        },  # fmt: skip
        "moments_s": {
            "activated": rel(act),
            "caught_up": rel(caught),
            "alias_moved": rel(done),
            "last_upload": rel(sent.last_send_ms),
        },  # fmt: skip
        "models": {
            "before": served_before,
            "after": config.to,
            "runs_per_partition": {str(p): seq for p, seq in sorted(runs.items())},
            "changes_once_per_partition": all(
                seq in ([served_before, config.to], [config.to], [served_before]) for seq in runs.values()
            ),  # fmt: skip
        },
        "answers": {
            "produced": len(sent.submitted_ms),
            "answered": sum(1 for e in sent.submitted_ms if e in collector.answers),
            "enriched": sum(1 for e in sent.submitted_ms if e in collector.answers and collector.answers[e].timings),
            "dead_lettered": sum(
                1 for e in sent.submitted_ms if e in collector.answers and collector.answers[e].timings is None
            ),
            "duplicates": collector.duplicates,
            "unreadable": collector.unreadable,
        },
        "throughput_series": st.rate_series(stamps, origin) if stamps else [],
        "reindex_series": [(rel(int(s["t_ms"])), s["rows"]) for s in timeline.samples],
        "config": asdict(config),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
    }
