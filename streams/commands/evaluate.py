"""``catalog models evaluate REF...``: store each model's evaluation where the console reads it.

Why a thin command: the scoring lives in ``model_store.distill.evaluate``; the entry point only
picks the registry and the model to pair with (the active one, from the settings), prints one JSON
line per model on stdout and progress on stderr, and turns a bad reference or a corrupted artifact
into one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and the benchmark load only when the command runs
    from streams.settings import Settings

EXIT_BAD_INPUT = 2


def add_parser(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = models.add_parser(
        "evaluate",
        help="score models on the held-out queries once per version and protocol (the console reads the result)",
    )
    p.add_argument("refs", nargs="+", help="name@version (a bare name means its latest version)")
    p.add_argument("--registry", help="registry folder (default: the shipped model_store/artifacts)")
    p.add_argument("--gallery-size", type=int, default=10_000, help="train items searched")
    p.add_argument("--queries", type=int, default=2_000, help="test items asked, each plain and as a seller photo")
    p.add_argument("--k", type=int, default=20, help="neighbours that vote")
    p.add_argument("--seed", type=int, default=0, help="draws the items and their seller renderings")
    p.add_argument("--examples", type=int, default=12, help="example queries whose neighbours are stored")
    p.add_argument("--top-k", type=int, default=8, help="neighbours stored per example query")
    p.add_argument("--force", action="store_true", help="recompute even when the stored evaluation is current")
    p.add_argument("--against", help="model the paired differences are taken against (default: the active one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (KNN runs on the CPU)")
    p.add_argument("--batch-size", type=int, default=256)
    return p


def command_line(args: argparse.Namespace, against: str) -> str:
    """The command that reproduces these figures, every protocol flag spelled out."""
    words = ["catalog", "models", "evaluate", *args.refs]
    for flag in ("gallery_size", "queries", "k", "seed", "examples", "top_k", "threads", "device", "batch_size"):
        words += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    words += ["--against", against] + (["--registry", args.registry] if args.registry else [])
    return shlex.join(words + (["--force"] if args.force else []))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from model_store.distill.evaluate import EvaluationError, Protocol, evaluate_refs, summary
    from model_store.embedding_models import UnknownModelError
    from model_store.registry import DEFAULT_ROOT, ModelRegistry, RegistryError

    registry = ModelRegistry(Path(args.registry) if args.registry else DEFAULT_ROOT)
    against = args.against or settings.model_ref
    try:
        protocol = Protocol(args.gallery_size, args.queries, args.k, args.seed, args.examples, args.top_k)
        outcomes = evaluate_refs(
            registry,
            args.refs,
            protocol,
            against,
            force=args.force,
            device=args.device,
            threads=args.threads,
            batch_size=args.batch_size,
            command=command_line(args, against),
        )
    except (EvaluationError, UnknownModelError, RegistryError) as exc:
        print(f"catalog models evaluate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for outcome in outcomes:
        print(json.dumps(summary(outcome)), flush=True)
    return 0
