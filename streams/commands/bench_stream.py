"""``catalog bench stream`` and ``catalog bench photos``: the end-to-end figure and the phone-photo intake case.

Why here: choosing what to start (a broker unless ``CATALOG_KAFKA_BOOTSTRAP`` names one, Milvus
Lite or a server), where to write and how to print is the entry point's job; the measuring is in
``infra.bench`` (a checkout's tools: it starts the broker, Milvus and worker processes) and the
arithmetic in ``processors.stream_stats``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.commands import bench_options as opts

if TYPE_CHECKING:
    from streams.settings import Settings


def default_out(kind: str, milvus: str, device: str, gallery: int, batch: int) -> str:
    return f"docs/bench/{kind}-{milvus}-{device.split(':')[0]}-{gallery // 1000}k-b{batch}.json"


def run_stream(args: argparse.Namespace, settings: Settings) -> int:
    """Measure, print the summary table, save the JSON and the PNG."""
    opts.checkout_on_path()
    try:
        from infra.bench.stream import StreamBenchConfig, run_stream_bench
        from infra.bench.stream_plot import plot_stream_report
    except ImportError as exc:  # an installed package has no infra/: the benchmark starts a checkout's runners
        raise SystemExit(f"catalog bench stream needs a checkout of the repository (infra/ missing: {exc})") from exc

    device = opts.bench_device(args, settings)
    shape = opts.worker_shape(args, settings, device)
    config = opts.bench_config(
        "stream",
        lambda: StreamBenchConfig(
            events=args.events,
            gallery=args.gallery,
            style=args.style,
            milvus=args.milvus,
            milvus_time_tick_ms=args.milvus_time_tick_ms,
            device=device,
            batch_size=args.batch_size or settings.batch_max_size,
            forward_batch_max=settings.forward_batch_max,
            batch_wait_s=args.batch_wait if args.batch_wait is not None else settings.batch_max_wait_s,
            torch_threads=shape.threads,
            inference_lanes=shape.lanes,
            partitions=args.partitions or settings.topic_partitions,
            in_flight=shape.in_flight,
            paced_fraction=args.paced_fraction,
            paced_events=args.paced_events,
            warmup_fraction=args.warmup_fraction,
            models_only_images=args.models_only_images,
            stall_s=args.stall,
            timeout_s=args.timeout,
            index_settle_quiet_s=args.settle_quiet_s,
            **({} if args.phase_quiet_s is None else {"phase_quiet_s": args.phase_quiet_s}),
        ),
    )
    report = opts.run_bench("stream", run_stream_bench, config, args, settings)
    if report is None:  # a runner or process failed
        return 1
    latencies = report.pop("_latencies_ms")
    report["command"] = opts.command_line()
    if args.photos:
        from infra.bench.photos import run_photo_bench

        report["photos"] = run_photo_bench(settings, progress=opts.say)
    for line in summary_lines(report):
        print(line)
    out = (
        args.out
        if args.out is not None
        else default_out("stream", args.milvus, device, args.gallery, config.batch_size)
    )
    if out:
        opts.write_report(report, out)
        png = plot_stream_report(report, latencies, Path(out).with_suffix(".png"))
        opts.say(f"wrote {png}")
    return 0 if all(p["complete"] for p in report["phases"].values()) else 1


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The run in a few lines of text (the JSON has everything)."""
    head, phases, worker = report["headline"], report["phases"], report["worker"]
    config = report["config"]
    lines = [
        f"gallery {config['gallery']:,} on {config['milvus']}, {config['device']}, batch {config['batch_size']}, "
        f"forwards of {report['models_only'].get('forward_batch') or 'the whole batch'}, "
        f"{config.get('inference_lanes') or 1} inference lane(s) of {config['torch_threads']} torch thread(s), "
        f"{config['in_flight']} batches in flight, "
        f"{config['events']:,} events",
        f"end to end (steady): {head['end_to_end_events_per_s']:.1f} events/s; models only: "
        f"{head['models_only_images_per_s']:.1f} images/s; ratio {head['ratio']:.3f}",
        f"models only before / after the worker: {report['models_only']['before_images_per_s']} / "
        f"{report['models_only']['after_images_per_s']} images/s; inside the worker during full load: "
        f"{report['models_only'].get('in_worker_during_full_load_images_per_s')} images/s",
    ]
    for name, phase in phases.items():
        lat = phase["latency_ms"]
        lines.append(
            f"{name}: {phase['answered']:,}/{phase['produced']:,} answered ({phase['dead_lettered']} dead letters), "
            f"latency p50 {lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')} ms, "
            f"mean batch {phase['batch_sizes'].get('mean')}"
        )
        quiet = phase.get("quiet_wait_before")
        if quiet:
            busy = "" if quiet["last_cores"] is None else f", {quiet['last_cores']} cores"
            state = "quiet" if quiet["quiet"] else f"not quiet{busy}"
            lines.append(f"  before it, {quiet['waited_s']} s for the machine to go {state}")
    stages = phases["full_load"]["stage_ms_per_batch"]
    lines.append("full load ms per batch (median): " + ", ".join(f"{k} {v['median']}" for k, v in stages.items()))
    bound = report.get("half_load_latency_bound")
    if bound:
        verdict = "holds" if bound["holds"] else "MISSED"
        lines.append(f"half load p99 {bound['p99_ms']} ms vs bound {bound['bound_ms']} ms: {verdict}")
    cpu = phases["full_load"].get("cpu")
    if cpu:
        cores, per_event = cpu["cores"], cpu["cpu_ms_per_event"]
        lines.append(
            f"full load CPU, cores of {cpu['cpus']}: worker {cores['worker']}, its children (Milvus Lite) "
            f"{cores['worker_children']}, benchmark {cores['benchmark']}, rest (broker, Milvus server, OS) "
            f"{cores['rest']}; machine {cores['machine']} = {per_event['machine']} ms per event"
        )
    factors = head.get("ratio_factors")
    if factors:
        lines.append(
            f"ratio ~ busy cores {factors['stream_cores']} / {factors['models_only_cores']} (models alone) "
            f"x the models' CPU {factors['models_cpu_ms_per_image']} / {factors['stream_cpu_ms_per_event']} ms "
            f"per event = {factors['busy_factor']} x {factors['models_share_of_cpu']} = {factors['product']}"
        )
    line = f"worker peak RSS: {worker['peak_rss_mib']} MiB"
    if worker.get("children"):
        line += f"; its {worker['children']} child process(es), Milvus Lite: {worker['children_peak_rss_mib']} MiB more"
    lines.append(line)
    if "photos" in report:
        lines.extend(photo_lines(report["photos"]))
    return lines


def photo_lines(photos: dict[str, Any]) -> list[str]:
    out = []
    for mode, r in photos["modes"].items():
        out.append(
            f"photos {mode}: {photos['count']} x {photos['size']} JPEG, intake {r['intake_ms']:.0f} ms, "
            f"batch {r['batch_ms']:.0f} ms, peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    if "speedup" in photos and "baseline_checkout" in photos["modes"]:
        base, now = photos["modes"]["baseline_checkout"], photos["modes"]["shrink"]
        out.append(
            f"photos: intake {base['intake_ms'] / now['intake_ms']:.1f}x faster than the baseline checkout, "
            f"peak RSS {base['peak_rss_mib']:.0f} -> {now['peak_rss_mib']:.0f} MiB"
        )
    if "speedup" in photos:
        out.append(f"photos: intake {photos['speedup']['intake']:.1f}x faster, peak RSS {photos['rss_ratio']:.2f}x")
    if "decode_floor" in photos:
        f = photos["decode_floor"]
        out.append(
            f"photos: libjpeg alone at that scale takes {f['serial_ms_per_photo']:.1f} ms a photo, "
            f"{f['batch_ms_on_all_cores']:.0f} ms for the batch on {f['threads']} cores: intake is "
            f"{f['intake_over_floor']:.2f}x that floor; the best possible speedup here is "
            f"{f['best_possible_intake_speedup']:.1f}x"
        )
    return out


def run_photos(args: argparse.Namespace, settings: Settings) -> int:
    opts.checkout_on_path()
    try:
        from infra.bench.photos import run_photo_bench
    except ImportError as exc:
        raise SystemExit(f"catalog bench photos needs a checkout of the repository (infra/ missing: {exc})") from exc
    opts.stop_cleanly_on_sigterm()
    baseline = Path(args.baseline_checkout) if args.baseline_checkout else None
    report = run_photo_bench(settings, count=args.count, progress=opts.say, baseline_checkout=baseline)
    report["command"] = opts.command_line()
    for line in photo_lines(report):
        print(line)
    if args.out:
        opts.write_report(report, args.out)
    return 0


def add_parsers(bench: argparse._SubParsersAction) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``bench stream`` and ``bench photos`` options (the caller sets the handlers)."""
    p = bench.add_parser(
        "stream", help="end to end through Kafka and a real worker vs the models alone, latency at full and half load"
    )
    p.add_argument("--events", type=int, default=5000, help="uploads published at once (full load)")
    p.add_argument("--gallery", type=int, default=10_000, help="labelled gallery rows loaded first")
    opts.add_style_option(p, "generated photos of the uploads")
    opts.add_milvus_option(p)
    opts.add_worker_options(
        p,
        threads_help="torch threads per lane, worker and models-only (default: configured or cores/lanes)",
        batch_wait=True,
    )
    p.add_argument("--in-flight", type=int, help="image batches in flight in the worker (CATALOG_PIPELINE_IN_FLIGHT)")
    p.add_argument("--paced-fraction", type=float, default=0.5, help="half-load rate as a share of the measured max")
    p.add_argument("--paced-events", type=int, help="uploads at half load (default: events/2, at most 120 s worth)")
    p.add_argument("--warmup-fraction", type=float, default=0.05, help="first share of outputs left out of the rate")
    p.add_argument("--models-only-images", type=int, default=1024, help="images of each models-only measure")
    p.add_argument("--stall", type=float, default=120.0, help="give up when no output came for this many seconds")
    p.add_argument(
        "--settle-quiet-s",
        type=float,
        default=30.0,
        help="after the gallery load, start once Milvus had no index rows pending for this long (at most 300 s)",
    )
    p.add_argument(
        "--phase-quiet-s",
        type=float,
        help="before half load, wait until the machine has been quiet this long (default 5 s; 0: no wait): what "
        "the full load left to Milvus and the broker is done (docs/operations.md, catalog bench stream)",
    )
    opts.add_limit_options(p, timeout=3600.0)
    p.add_argument("--photos", action="store_true", help="also measure the 33 phone-photo batch (bench photos)")
    opts.add_out_option(p, "stream")
    ph = bench.add_parser(
        "photos", help="intake time and peak RSS of a batch of 6000x4000 phone JPEGs, full decode vs shrink on load"
    )
    ph.add_argument("--count", type=int, default=33, help="photos in the batch")
    ph.add_argument(
        "--baseline-checkout",
        help="another checkout (e.g. git archive of an older commit) whose pipeline is also measured as it builds it",
    )
    ph.add_argument("--out", default="docs/bench/stream-photos.json", help="JSON report ('' for none)")
    return p, ph
