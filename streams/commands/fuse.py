"""``catalog fuse``: distil any subset of the registered teachers into a candidate student (seed 000 embodiment 5).

The work is ``model_store.fusion``; this module reads the flags, checks every candidate of the
request before the first one trains, turns each refusal into one line on stderr with exit code 2,
and writes into each manifest the command that makes that candidate again and the one that runs
the full recipe for its subset on a GPU.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

EXIT_BAD_REQUEST = 2
DEFAULT_OUT = Path("runs/fusion")
NO_INIT = "none"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from model_store.embedding_models import SHIPPED_STUDENT_REF
    from model_store.fusion.schedule import SHORT_BATCH, SHORT_STEPS

    p = sub.add_parser(
        "fuse",
        help="distil a subset of the teachers (or every subset) into candidate students, registered as fused-*",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--teachers", help="comma-separated teacher names of the taxonomy, e.g. clothing,shoes")
    which.add_argument("--all-subsets", action="store_true", help="one candidate per non-empty subset")
    p.add_argument("--name", help="registry name (default: fused-<teachers joined by '-' in taxonomy order>)")
    p.add_argument("--version", help="version to register (default: the next free one)")
    p.add_argument("--init", help=f"registered student to warm-start from; '{NO_INIT}': ImageNet Lite0 "
                                  f"(default: {SHIPPED_STUDENT_REF}, with --full: {NO_INIT})")  # fmt: skip
    p.add_argument("--steps", type=int, help=f"short schedule: training steps (default {SHORT_STEPS})")
    p.add_argument("--batch-size", type=int, help=f"short schedule: batch size (default {SHORT_BATCH})")
    p.add_argument("--full", action="store_true", help="the full distillation recipe (20 epochs at batch 256: a GPU)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints under --out")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folders, one per candidate: OUT/<name>")
    p.add_argument("--registry", type=Path, help="model registry root (default: model_store/artifacts)")
    p.add_argument("--taxonomy", type=Path, help="JSON of Taxonomy fields (claim 2 / claim 3 taxonomies)")
    p.add_argument("--config", dest="recipe", type=Path,
                   help="JSON of other RecipeConfig fields (gamma, coral_layers, val_items, ...)")  # fmt: skip
    p.add_argument("--device", help="cpu or cuda (default: cpu; with --full: cuda)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.set_defaults(fn=run)
    return p


def _fail(message: str) -> int:
    print(f"catalog fuse: error: {message}", file=sys.stderr, flush=True)
    return EXIT_BAD_REQUEST


def _load_taxonomy(path: Path | None):  # -> Taxonomy
    from model_store.distill.taxonomy import Taxonomy
    from model_store.fusion import FusionError

    try:
        return Taxonomy.load(path)
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # missing file, bad JSON, bad fields
        raise FusionError(f"cannot use taxonomy {path}: {exc}") from None


def _load_fields(path: Path | None) -> dict:
    from model_store.fusion import FusionError

    try:
        fields = {} if path is None else json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FusionError(f"cannot read recipe config {path}: {exc}") from None
    if not isinstance(fields, dict):
        raise FusionError(f"recipe config {path} must hold a JSON object of RecipeConfig fields")
    return fields


def _commands(args: argparse.Namespace, request, device: str) -> tuple[str, str]:
    """(the command that makes this candidate again, the one that runs the full recipe for its subset)."""
    plan = request.plan
    base = ["catalog", "fuse", "--teachers", ",".join(plan.teachers)]
    base += ["--name", request.name] if request.name != plan.default_name else []
    base += ["--taxonomy", str(args.taxonomy)] if args.taxonomy else []
    base += ["--config", str(args.recipe)] if args.recipe else []
    this = [*base, "--version", request.version, "--init", request.init_ref or NO_INIT]
    if request.schedule.full:
        this += ["--full", "--device", device]
    else:
        this += ["--steps", str(request.schedule.steps), "--batch-size", str(request.schedule.batch_size)]
        this += ["--device", device] if device != "cpu" else []
    return shlex.join(this), shlex.join([*base, "--full"])


def _requests(args: argparse.Namespace, registry, taxonomy, device: str) -> list:
    from model_store.embedding_models import SHIPPED_STUDENT_REF
    from model_store.fusion import FusionError, Schedule, all_subsets, parse_teacher_list, plan_fusion, prepare
    from model_store.fusion.schedule import SHORT_BATCH, SHORT_STEPS

    if args.full and (args.steps is not None or args.batch_size is not None):
        raise FusionError("--steps and --batch-size set the short schedule; --full runs the recipe's own")
    if args.all_subsets and args.name:
        raise FusionError("--name names one candidate; --all-subsets makes one per subset under its default name")
    try:
        steps = SHORT_STEPS if args.steps is None else args.steps
        schedule = Schedule(args.full, steps, SHORT_BATCH if args.batch_size is None else args.batch_size)
    except ValueError as exc:
        raise FusionError(str(exc)) from None
    init = args.init or (NO_INIT if args.full else SHIPPED_STUDENT_REF)
    plans = all_subsets(taxonomy) if args.all_subsets else [plan_fusion(taxonomy, parse_teacher_list(args.teachers))]
    fields = _load_fields(args.recipe)
    init_ref = None if init == NO_INIT else init
    return [prepare(registry, taxonomy, plan, schedule, init_ref, args.name, args.version, device, args.threads, fields)
            for plan in plans]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from model_store.fusion import FusionError, fuse
    from model_store.registry import DEFAULT_ROOT, ModelRegistry
    from model_store.training import CheckpointMismatchError

    registry = ModelRegistry(args.registry or DEFAULT_ROOT)
    device = args.device or ("cuda" if args.full else "cpu")
    try:
        requests = _requests(args, registry, _load_taxonomy(args.taxonomy), device)
        for request in requests:
            command, full_command = _commands(args, request, device)
            started = time.perf_counter()
            manifest = fuse(request, registry, args.out / request.name, command=command,
                            full_recipe_command=full_command, resume=args.resume)  # fmt: skip
            m = manifest.metrics
            print(json.dumps({
                "registered": manifest.ref, "parents": manifest.parents, "categories": list(request.plan.categories),
                "seconds": round(time.perf_counter() - started, 1),
                "metrics": {k: m[k] for k in ("val_l2", "val_coral", "val_proto_acc", "init_eval") if k in m},
            }), flush=True)  # fmt: skip
    except (FusionError, CheckpointMismatchError) as exc:
        return _fail(str(exc))
    return 0
