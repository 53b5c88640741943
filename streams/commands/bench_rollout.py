"""``catalog bench rollout``: a model rollout under a steady stream (re-index rate, switch gap, enrichment meanwhile).

Why here: choosing what to start, where to write and how to print is the entry point's job; the
measuring is in ``infra.bench.rollout`` (a checkout's tools: it starts the broker, Milvus and the
worker), which reuses the stream bench's machinery.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.commands import bench_options as opts

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
    opts.add_milvus_option(p)
    opts.add_style_option(p, "generated photos")
    opts.add_worker_options(p, threads_help="torch threads per lane of worker and model-only measure", batch_wait=False)
    p.add_argument("--baseline", type=float, default=60.0, help="seconds of steady stream before the activation")
    p.add_argument("--warmup", type=float, default=5.0, help="first seconds of the baseline left out")
    p.add_argument("--tail", type=float, default=10.0, help="seconds of stream after the alias moved")
    p.add_argument("--models-only-images", type=int, default=512, help="images of each model-only measure")
    p.add_argument("--rollout-timeout", type=float, default=3600.0, help="give up when the rollout takes longer")
    opts.add_limit_options(p, timeout=7200.0)
    opts.add_out_option(p, "rollout")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure, print a summary, save the JSON and the PNG."""
    opts.checkout_on_path()
    try:
        from infra.bench.rollout import RolloutBenchConfig, run_rollout_bench
        from infra.bench.rollout_plot import plot_rollout_report
    except ImportError as exc:  # an installed package has no infra/
        raise SystemExit(f"catalog bench rollout needs a checkout of the repository (infra/ missing: {exc})") from exc

    device = opts.bench_device(args, settings)
    shape = opts.worker_shape(args, settings, device)
    config = opts.bench_config("rollout", lambda: RolloutBenchConfig(
        gallery=args.gallery, to=args.to, rate=args.rate, events=args.events, milvus=args.milvus,
        milvus_time_tick_ms=args.milvus_time_tick_ms, style=args.style, device=device,
        batch_size=args.batch_size or settings.batch_max_size,
        batch_wait_s=settings.batch_max_wait_s, torch_threads=shape.threads, inference_lanes=shape.lanes,
        partitions=args.partitions or settings.topic_partitions, baseline_s=args.baseline,
        warmup_s=args.warmup, tail_s=args.tail, models_only_images=args.models_only_images,
        rollout_timeout_s=args.rollout_timeout, timeout_s=args.timeout,
    ))  # fmt: skip
    report = opts.run_bench("rollout", run_rollout_bench, config, args, settings)
    if report is None:
        return 1
    report["command"] = opts.command_line()
    for line in summary_lines(report):
        print(line)
    name = args.to.replace("@", "-")
    out = (
        args.out
        if args.out is not None
        else f"docs/bench/rollout-{args.milvus}-{device.split(':')[0]}-{args.gallery // 1000}k-{name}.json"
    )
    if out:
        opts.write_report(report, out)
        opts.say(f"wrote {plot_rollout_report(report, Path(out).with_suffix('.png'))}")
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
