"""``catalog``: one entry point, thin subcommands that call library code."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from streams.commands.activate import add_parser as add_models_activate
from streams.commands.console import add_parser as add_console
from streams.commands.evaluate import add_parser as add_models_evaluate
from streams.commands.gallery import add_parsers as add_gallery_admin
from streams.commands.rollout import add_parser as add_rollout
from streams.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(config_file=args.config) if args.config else Settings()


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.run import run_worker

    return run_worker(_settings(args))


def cmd_topics(args: argparse.Namespace) -> int:
    from streams.topics import ensure_topics

    s = _settings(args)
    created = asyncio.run(ensure_topics(s))
    print(json.dumps({"created": created}))
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.commands.produce import folder_submissions, generated_submissions, publish

    s = _settings(args)
    if args.folder:
        subs = folder_submissions(Path(args.folder), as_url=args.as_url)
    else:
        subs = generated_submissions(args.generated, s.model_image_size * 2, args.style, args.seed)
    sent = asyncio.run(publish(s, s.topic_images, subs, Path(args.truth) if args.truth else None))
    print(json.dumps({"published": sent, "topic": s.topic_images}))
    return 0


def cmd_gallery_load(args: argparse.Namespace) -> int:
    from streams.commands.gallery import load

    return load(args, _settings(args))


def _offline(args: argparse.Namespace, paths: list[Path], upsert: bool) -> list:
    from streams.commands.offline import enrich_files
    from streams.pipeline_factory import build_pipeline

    s = _settings(args).one_batch_at_a_time()
    pipeline = build_pipeline(s, upsert=upsert)

    async def go() -> list:
        try:
            return await enrich_files(pipeline, paths, s.batch_max_size)
        finally:
            await pipeline.aclose()

    return asyncio.run(go())


def cmd_enrich(args: argparse.Namespace) -> int:
    from streams.commands.offline import outcome_json

    for outcome in _offline(args, [Path(p) for p in args.paths], upsert=not args.no_upsert):
        print(outcome_json(outcome))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from processors.requests import Enrichment
    from streams.commands.offline import outcome_json

    (outcome,) = _offline(args, [Path(args.image)], upsert=False)
    if not isinstance(outcome, Enrichment):
        print(outcome_json(outcome))
        return 2
    print(
        json.dumps(
            {
                "category": outcome.vote.label,
                "vote_share": outcome.vote.vote_share,
                "votes": outcome.vote.votes,
                "similar_items": [
                    {"product_id": n.product_id, "category": n.category, "score": round(n.score, 4)}
                    for n in outcome.similar
                ],
            },
            indent=2,
        )
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from processors.embedding import TorchEmbedder
    from processors.knn_benchmark import run_knn_benchmark

    s = _settings(args).one_batch_at_a_time()
    embedder = TorchEmbedder.from_config(s.embedder_config())
    report = run_knn_benchmark(embedder, args.gallery_size, args.queries, s.knn_k, args.style)
    _emit_report(report.as_dict(), args.out)
    return 0


def _emit_report(report: dict, out: str | None) -> None:
    """Print a bench report as JSON and, with --out, save the same text."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    import tempfile

    from processors.pipeline_benchmark import run_pipeline_benchmark
    from streams.pipeline_factory import build_pipeline

    s = _settings(args).one_batch_at_a_time()  # the bench runs its batches one after another
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        if args.fresh_gallery:
            s = s.model_copy(update={"milvus_uri": f"{tmp}/bench.db"})
        pipeline = build_pipeline(s)
        report = run_pipeline_benchmark(pipeline, args.images, s.batch_max_size)
        asyncio.run(pipeline.aclose())
    _emit_report(report.as_dict(), args.out)
    return 0


def cmd_bench_overlap(args: argparse.Namespace) -> int:
    from streams.commands.bench_overlap import run

    return run(args, _settings(args))


def cmd_bench_stream(args: argparse.Namespace) -> int:
    from streams.commands.bench_stream import run_stream

    return run_stream(args, _settings(args))


def cmd_bench_photos(args: argparse.Namespace) -> int:
    from streams.commands.bench_stream import run_photos

    return run_photos(args, _settings(args))


def cmd_bench_rollout(args: argparse.Namespace) -> int:
    from streams.commands.bench_rollout import run

    return run(args, _settings(args))


def cmd_bench_index(args: argparse.Namespace) -> int:
    from streams.commands.bench_index import run

    return run(args, _settings(args))


def cmd_schemas(args: argparse.Namespace) -> int:
    from streams.schema_files import check_schemas, write_schemas

    if args.check:
        stale = check_schemas()
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas():
        print(path)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from model_store.embedding_models import available_models

    print(json.dumps({"embedding_models": available_models(), "active": _settings(args).model_ref}))
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    """Promote trained versions into the registry the worker serves from, exactly as they were measured."""
    from model_store.registry import DEFAULT_ROOT, ModelRegistry, RegistryError

    source = ModelRegistry(Path(args.source))
    target = ModelRegistry(Path(args.to) if args.to else DEFAULT_ROOT)
    done: dict[str, list[str]] = {"imported": [], "already_present": []}
    manifests = []
    try:
        for ref in args.refs:
            manifest, copied = target.import_version(source, ref)
            done["imported" if copied else "already_present"].append(manifest.ref)
            manifests.append(manifest)
    except (RegistryError, ValueError) as exc:
        print(json.dumps({"error": str(exc), **done}), file=sys.stderr)
        return 1
    not_here = {m.ref: missing for m in manifests if (missing := target.missing_parents(m))}
    print(json.dumps({**done, "parents_not_here": not_here, "registry": str(target.root),
                      "registry_bytes": target.total_bytes()}))  # fmt: skip
    return 0


def cmd_models_evaluate(args: argparse.Namespace) -> int:
    from streams.commands.evaluate import run

    return run(args, _settings(args))


def cmd_models_activate(args: argparse.Namespace) -> int:
    from streams.commands.activate import run

    return run(args, _settings(args))


def cmd_console(args: argparse.Namespace) -> int:
    from streams.commands.console import run

    return run(args, _settings(args))


def _quality_line(quality: dict | None) -> str | None:
    if not quality:
        return None
    bg, pos, vis = quality["background"], quality["position"], quality["visual"]
    return (f"total {quality['total']:.2f}: background {bg['label']} {bg['score']:.2f}, "
            f"position {pos['category']} {pos['score']:.2f}, visual {vis['score']:.2f} "
            f"(aesthetic {vis['aesthetic']:.2f}, noise {vis['noise']:.2f})")  # fmt: skip


def cmd_report(args: argparse.Namespace) -> int:
    from streams.commands.report import collect, load_truth

    s = _settings(args)
    truth = load_truth(Path(args.truth))
    summary = asyncio.run(collect(s, s.topic_enriched, s.topic_dlq, set(truth), args.timeout))
    fine, coarse = summary.accuracy(truth)
    throughput = summary.throughput(truth)
    samples = list(summary.enriched.values())[: args.samples]
    out = {
        "expected": len(truth),
        "enriched": len(summary.enriched),
        "dead_lettered": len(summary.dead),
        "fine_accuracy": round(fine, 4),
        "coarse_accuracy": round(coarse, 4),
        "throughput_events_per_s": None if throughput is None else round(throughput, 1),
        "quality": summary.quality_summary(),
        "samples": [
            {
                "product_id": r["product_id"],
                "truth": truth[r["event_id"]]["label"],
                "category": r["category"]["label"],
                "vote_share": r["category"]["vote_share"],
                "similar": [n["product_id"] for n in r["similar_items"][:3]],
                "quality": _quality_line(r.get("quality")),
                "timings_ms": r["timings"],
            }
            for r in samples
        ],
    }
    print(json.dumps(out, indent=2))
    return 0 if len(summary.enriched) == len(truth) else 1


_MODEL_TOOLS = {  # (command, subcommand): (module whose main() takes the remaining arguments, help)
    ("train", "distill"): ("model_store.distill.train", "teachers, router and the unified student"),
    ("train", "quality"): ("model_store.quality.train", "background, position and visual-experience models"),
    ("bench", "distill"): ("model_store.distill.benchmark", "routed vs oracle-routed teachers vs the student"),
    ("bench", "quality"): ("model_store.quality.benchmark", "the three quality models on held-out photos"),
}


def _run_model_tool(module: str, argv: list[str]) -> int:
    """A model-store tool's own command line, so its flags and --help are the tool's."""
    import importlib

    result = importlib.import_module(module).main(argv)
    return result if isinstance(result, int) else 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    import dataclasses

    from streams.commands.dlq import build_filter, replay

    selection = build_filter(args.code, args.key, args.since, args.until, args.source_topic)
    report = asyncio.run(replay(_settings(args), selection, dry_run=args.dry_run))
    print(json.dumps({"dry_run": args.dry_run, **dataclasses.asdict(report)}))
    return 0


def _model_tools(command: str) -> list[tuple[str, tuple[str, str]]]:
    return [(name, tool) for (cmd, name), tool in _MODEL_TOOLS.items() if cmd == command]


def _add_bench_commands(be: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommands; their modules are imported here, only for a bench command line."""
    from streams.commands.bench_index import add_parser as add_bench_index
    from streams.commands.bench_overlap import add_parser as add_bench_overlap
    from streams.commands.bench_rollout import add_parser as add_bench_rollout
    from streams.commands.bench_stream import add_parsers as add_bench_stream

    bb = be.add_parser("baseline", help="KNN accuracy of the active embedder on Fashion-MNIST")
    bb.add_argument("--gallery-size", type=int, default=10_000)
    bb.add_argument("--queries", type=int, default=2_000)
    bb.add_argument("--style", choices=["plain", "seller"], default="plain")
    bb.add_argument("--out", help="also save the JSON report here")
    bb.set_defaults(fn=cmd_bench)

    bp = be.add_parser(
        "pipeline", help="pipeline (intake + models + Milvus) vs embedder-only and models-only throughput"
    )
    bp.add_argument("--images", type=int, default=1024)
    bp.add_argument("--fresh-gallery", action="store_true", help="use an empty temporary Milvus Lite DB")
    bp.add_argument("--out")
    bp.set_defaults(fn=cmd_bench_pipeline)
    add_bench_index(be).set_defaults(fn=cmd_bench_index)
    bench_stream, bench_photos = add_bench_stream(be)
    bench_stream.set_defaults(fn=cmd_bench_stream)
    bench_photos.set_defaults(fn=cmd_bench_photos)
    add_bench_overlap(be).set_defaults(fn=cmd_bench_overlap)
    add_bench_rollout(be).set_defaults(fn=cmd_bench_rollout)

    for name, (_module, what) in _model_tools("bench"):
        be.add_parser(name, help=f"{what}; arguments: catalog bench {name} --help", add_help=False)


# commands whose options import training or benchmark code: registered in full only when named
TOOL_COMMANDS = frozenset({"bench", "fuse"})


def build_parser(with_tools: bool = True) -> argparse.ArgumentParser:
    """The command line. ``with_tools=False`` lists ``bench`` and ``fuse`` by name only, so the serving
    commands (worker, enrich, search, console) import no training or benchmark module."""
    p = argparse.ArgumentParser(prog="catalog", description=__doc__)
    p.add_argument("--config", help="TOML settings file (env CATALOG_* overrides it)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("worker", help="run the Kafka enrichment worker").set_defaults(fn=cmd_worker)
    sub.add_parser("topics", help="create the topics with the configured partitions").set_defaults(fn=cmd_topics)

    pr = sub.add_parser("produce", help="publish ImageSubmitted events (stand-in upload pipeline)")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument("--generated", type=int, help="N generated images from the Fashion-MNIST test split")
    src.add_argument("--folder", help="publish every image under this folder")
    pr.add_argument("--as-url", action="store_true", help="send file:// URLs instead of inline base64")
    pr.add_argument("--style", choices=["plain", "seller"], default="seller")
    pr.add_argument("--seed", type=int, default=1)
    pr.add_argument("--truth", help="write event_id -> true label and submitted_at JSON lines here")
    pr.set_defaults(fn=cmd_produce)

    ga = sub.add_parser("gallery", help="gallery management").add_subparsers(dest="gallery_cmd", required=True)
    gl = ga.add_parser("load", help="load a labelled sample set as confirmed rows")
    gsrc = gl.add_mutually_exclusive_group()
    gsrc.add_argument("--folder", help="tree category/*.jpg")
    gl.add_argument("--split", choices=["train", "test"], default="train")
    gl.add_argument("--limit", type=int, default=10_000)
    gl.add_argument("--style", choices=["plain", "seller"], default="plain")
    gl.add_argument("--seed", type=int, default=0)
    gl.add_argument("--no-publish", action="store_true", help="skip the gallery topic (a rollout cannot replay it)")
    gl.set_defaults(fn=cmd_gallery_load)
    add_gallery_admin(ga)  # collections, drop
    add_rollout(sub)  # rollout status, reindex

    en = sub.add_parser("enrich", help="run the pipeline on image files; print JSON lines")
    en.add_argument("paths", nargs="+")
    en.add_argument("--no-upsert", action="store_true", help="do not write the images into the gallery")
    en.set_defaults(fn=cmd_enrich)

    se = sub.add_parser("search", help="similar items and voted category for one image")
    se.add_argument("image")
    se.set_defaults(fn=cmd_search)

    tr = sub.add_parser("train", help="train models into the registry").add_subparsers(dest="train_cmd", required=True)
    if with_tools:
        from streams.commands.fuse import add_parser as add_fuse

        add_fuse(sub)  # catalog fuse: teacher subsets into candidate students (its options import the training code)
    else:
        sub.add_parser("fuse", help="distil teacher subsets into candidate students (catalog fuse --help)")
    bench = sub.add_parser("bench", help="benchmarks (catalog bench --help lists them)")
    if with_tools:
        _add_bench_commands(bench.add_subparsers(dest="bench_cmd", required=True))
    for name, (_module, what) in _model_tools("train"):
        tr.add_parser(name, help=f"{what}; arguments: catalog train {name} --help", add_help=False)

    dq = sub.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_cmd", required=True)
    dr = dq.add_parser("replay", help="re-publish chosen dead letters to their source topic (exact key and value)")
    dr.add_argument("--code", action="append", default=[], help="error code (repeatable); default: any")
    dr.add_argument("--key", action="append", default=[], help="Kafka key or product id (repeatable)")
    dr.add_argument("--since", help="failed_at from (ISO 8601 with timezone)")
    dr.add_argument("--until", help="failed_at before (ISO 8601 with timezone)")
    dr.add_argument("--source-topic", action="append", default=[], help="only letters from this topic")
    dr.add_argument("--dry-run", action="store_true", help="count what would be replayed, send nothing")
    dr.set_defaults(fn=cmd_dlq_replay)
    sc = sub.add_parser("schemas", help="write (or --check) the JSON Schema files of the events")
    sc.add_argument("--check", action="store_true")
    sc.set_defaults(fn=cmd_schemas)

    mo = sub.add_parser("models", help="list embedding models (or import versions: catalog models import --help)")
    mo.set_defaults(fn=cmd_models)
    models_sub = mo.add_subparsers(dest="models_cmd")
    mi = models_sub.add_parser(
        "import", help="copy versions from another registry (a training run's) into the served one, digests checked"
    )
    mi.add_argument("refs", nargs="+", help="name@version (a bare name means its latest version)")
    mi.add_argument("--from", dest="source", required=True, help="registry folder the versions come from")
    mi.add_argument("--to", help="registry folder to copy into (default: the shipped model_store/artifacts)")
    mi.set_defaults(fn=cmd_models_import)
    add_models_evaluate(models_sub).set_defaults(fn=cmd_models_evaluate)
    add_models_activate(models_sub).set_defaults(fn=cmd_models_activate)
    add_console(sub).set_defaults(fn=cmd_console)

    rp = sub.add_parser("report", help="read the output topics and score a produced run against its truth file")
    rp.add_argument("--truth", required=True, help="the file catalog produce --truth wrote (labels, submitted_at)")
    rp.add_argument("--timeout", type=float, default=300.0)
    rp.add_argument("--samples", type=int, default=3)
    rp.set_defaults(fn=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    from streams.logging_setup import configure_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    tool = _MODEL_TOOLS.get((argv[0], argv[1])) if len(argv) >= 2 else None
    if tool is not None:
        return _run_model_tool(tool[0], argv[2:])
    args = build_parser(with_tools=not TOOL_COMMANDS.isdisjoint(argv)).parse_args(argv)
    configure_logging("INFO", json_lines=True)  # logs to stderr: stdout carries the command's JSON
    from pydantic import ValidationError

    try:
        return int(args.fn(args) or 0)
    except ValidationError as exc:  # bad settings: one clear line per field, exit 2, no stack trace
        from streams.startup import EXIT_STARTUP_FAILED, StartupError

        for err in exc.errors():
            field = "_".join(str(part) for part in err["loc"]).upper()
            StartupError(f"CATALOG_{field}" if field else "settings", err["msg"]).log()
        return EXIT_STARTUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
