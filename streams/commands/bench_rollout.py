"""``catalog bench rollout``: a model rollout under a steady stream (re-index rate, switch gap, enrichment meanwhile).

Why here: choosing what to start, where to write and how to print is the entry point's job; the
measuring is in ``infra.bench.rollout`` (a checkout's tools: it starts the broker, Milvus and the
worker), which reuses the stream bench's machinery.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.commands.bench_stream import _check_device, _command_line, _say, _stop_cleanly_on_sigterm, _threads

if TYPE_CHECKING:
    from streams.settings import Settings


def add_parser(bench: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = bench.add_parser(
        "rollout",
        help="activate another model under a steady stream: re-index images/s vs the model alone, switch gap, "
        "enrichment during the re-index vs without",
    )
    p.add_argument("--gallery", type=int, default=60_000, help="gallery items loaded (through the gallery topic) first")
    p.add_argument("--to", default="student-gamma0@2", help="the registry model activated mid-stream (name@version)")
    p.add_argument("--rate", type=float, default=20.0, help="uploads/s, the same before and during the rollout")
    p.add_argument("--events", type=int, default=100_000, help="the most uploads published (the run stops earlier)")
    p.add_argument("--milvus", choices=["lite", "server"], default="lite", help="Milvus Lite file or a real server")
    p.add_argument("--style", choices=["seller", "plain"], default="seller", help="generated photos")
    p.add_argument("--device", help="cpu or cuda (default: CATALOG_DEVICE)")
    p.add_argument("--batch-size", type=int, help="micro-batch size (default: CATALOG_BATCH_MAX_SIZE)")
    p.add_argument("--threads", type=int, help="torch threads of worker and model-only measure")
    p.add_argument("--partitions", type=int, help="partitions of the run's topics (default: CATALOG_TOPIC_PARTITIONS)")
    p.add_argument("--baseline", type=float, default=60.0, help="seconds of steady stream before the activation")
    p.add_argument("--warmup", type=float, default=5.0, help="first seconds of the baseline left out")
    p.add_argument("--tail", type=float, default=10.0, help="seconds of stream after the alias moved")
    p.add_argument("--models-only-images", type=int, default=512, help="images of each model-only measure")
    p.add_argument("--rollout-timeout", type=float, default=3600.0, help="give up when the rollout takes longer")
    p.add_argument("--timeout", type=float, default=7200.0, help="give up after this many seconds in all")
    p.add_argument("--workdir", help="keep logs and data here (default: a temporary folder, removed)")
    p.add_argument("--out", help="JSON report; a PNG goes beside it (default docs/bench/rollout-...json; '' for none)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure, print a summary, save the JSON and the PNG."""
    try:
        from infra.bench.rollout import RolloutBenchConfig, run_rollout_bench
        from infra.bench.rollout_plot import plot_rollout_report
        from infra.bench.stream import BenchError
    except ImportError as exc:  # an installed package has no infra/
        raise SystemExit(f"catalog bench rollout needs a checkout of the repository (infra/ missing: {exc})") from exc

    device = args.device or settings.device
    _check_device(device)
    _stop_cleanly_on_sigterm()
    try:
        config = RolloutBenchConfig(
            gallery=args.gallery, to=args.to, rate=args.rate, events=args.events, milvus=args.milvus,
            style=args.style, device=device, batch_size=args.batch_size or settings.batch_max_size,
            batch_wait_s=settings.batch_max_wait_s, torch_threads=_threads(args.threads, settings),
            partitions=args.partitions or settings.topic_partitions, baseline_s=args.baseline,
            warmup_s=args.warmup, tail_s=args.tail, models_only_images=args.models_only_images,
            rollout_timeout_s=args.rollout_timeout, timeout_s=args.timeout,
        )  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"catalog bench rollout: {exc}") from exc
    bootstrap = settings.kafka_bootstrap if "kafka_bootstrap" in settings.model_fields_set else None
    try:
        report = run_rollout_bench(
            config, settings, bootstrap=bootstrap, workdir=Path(args.workdir) if args.workdir else None, progress=_say
        )
    except (BenchError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        _say(f"catalog bench rollout failed: {type(exc).__name__}: {exc}")
        return 1
    report["command"] = _command_line()
    for line in summary_lines(report):
        print(line)
    name = args.to.replace("@", "-")
    out = (
        args.out
        if args.out is not None
        else f"docs/bench/rollout-{args.milvus}-{device.split(':')[0]}-{args.gallery // 1000}k-{name}.json"
    )
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
        _say(f"wrote {out}")
        _say(f"wrote {plot_rollout_report(report, Path(out).with_suffix('.png'))}")
    answers = report["answers"]
    return 0 if answers["answered"] == answers["produced"] else 1


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The run in a few lines (the JSON has everything)."""
    head, cfg, enr = report["headline"], report["config"], report["enrichment"]
    a, b = enr["without_reindex"], enr["during_reindex"]
    return [
        f"rollout {report['models']['before']} -> {cfg['to']}, gallery {cfg['gallery']:,} on {cfg['milvus']}, "
        f"{cfg['device']}, uploads at {cfg['rate']}/s, {report['answers']['produced']:,} uploads",
        f"re-index: {head['reindex_images_per_s']} images/s vs the model alone {head['models_only_images_per_s']} "
        f"images/s (ratio {head['reindex_vs_models_only']})",
        f"rollout {head['rollout_s']} s; longest gap without output: switch {head['switch_gap_s']} s, whole rollout "
        f"{head['rollout_gap_s']} s (before the activation {head['baseline_gap_s']} s)",
        f"enrichment without / during the re-index: {a['delivered_events_per_s']} / {b['delivered_events_per_s']} "
        f"events/s, p50 {a['latency_ms'].get('p50')} / {b['latency_ms'].get('p50')} ms, "
        f"p99 {a['latency_ms'].get('p99')} / {b['latency_ms'].get('p99')} ms",
        f"models per partition: {report['models']['runs_per_partition']} "
        f"(changes once: {report['models']['changes_once_per_partition']})",
        f"answered {report['answers']['answered']:,}/{report['answers']['produced']:,} "
        f"({report['answers']['dead_lettered']} dead letters, {report['answers']['duplicates']} duplicates)",
    ]
