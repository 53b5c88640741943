"""Entry point: ``python -m model_store.distill.train teachers|router|student [options]``.

Each run checkpoints under ``--out`` and registers its result in the model registry with the
exact command that reproduced it. ``--resume`` continues from the latest checkpoint under
``--out``. A JSON ``--config`` holds any RecipeConfig field (taxonomy included); flags override it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model_store.distill.config import RecipeConfig
from model_store.registry import DEFAULT_ROOT, ModelRegistry
from model_store.training.command import recipe_command


def parse_pins(pins: list[str]) -> dict[str, str]:
    """``["clothing=3"]`` -> ``{"clothing": "3"}``; a malformed pin stops the run before any work."""
    out = {}
    for pin in pins:
        teacher, sep, version = pin.partition("=")
        if not (sep and teacher and version):
            raise SystemExit(f"--teacher-pin wants TEACHER=VERSION, got {pin!r}")
        out[teacher] = version
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_store.distill.train", description=__doc__)
    p.add_argument("what", choices=["teachers", "router", "student"])
    p.add_argument("--config", type=Path, help="JSON file of RecipeConfig fields")
    p.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, report)")
    p.add_argument("--registry", type=Path, default=DEFAULT_ROOT, help="model registry root")
    p.add_argument("--version", default="1", help="version to register")
    p.add_argument("--name", default="student", help="student: registry name (e.g. student-gamma0)")
    p.add_argument("--teacher-version", default="1", help="student: version of the teachers to distil")
    p.add_argument("--teacher-pin", nargs="*", default=[], metavar="TEACHER=VERSION",
                   help="student: another version for these teachers (e.g. clothing=3)")  # fmt: skip
    p.add_argument("--only", nargs="*", help="teachers: train only these teachers")
    p.add_argument("--init-version", help="warm start from this registered version of the same model(s)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint under --out")
    p.add_argument("--image-size", type=int)
    p.add_argument("--work-size", type=int, help="student: resolution its trunk runs at (a multiple of 32)")
    p.add_argument("--head-hidden", type=int, help="student: width of a residual MLP beside the projection")
    p.add_argument("--mixup-alpha", type=float, help="student: within-category input mixup Beta(a, a); 0: off")
    p.add_argument("--affine-jitter", type=float, help="student: random shift/zoom/turn strength of inputs; 0: off")
    p.add_argument(
        "--mirror-targets",
        action="store_true",
        default=None,
        help="student: the target is the teachers' mean vector over the image and its mirror image",
    )
    p.add_argument("--epochs", type=float)
    p.add_argument("--samples-per-epoch", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--gamma", type=float)
    p.add_argument("--class-weights", type=float, nargs="+", help="student: sampling weight per fine class")
    p.add_argument("--plain-fraction", type=float, help="share of plain catalog items in training batches")
    p.add_argument("--coral-layers", type=int, nargs="*", help="Lite0 block indices 0..15 (none: no CORAL)")
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--head-lr", type=float)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--device", help="cpu or cuda (bf16 autocast on cuda)")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--loader-workers", type=int, help="worker processes building batches (0: one thread)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    cfg = RecipeConfig.load(
        args.config, image_size=args.image_size, work_size=args.work_size, head_hidden=args.head_hidden,
        mixup_alpha=args.mixup_alpha, affine_jitter=args.affine_jitter, mirror_targets=args.mirror_targets,
        epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
        batch_size=args.batch_size, gamma=args.gamma, plain_fraction=args.plain_fraction,
        class_weights=args.class_weights, seed=args.seed,
        lr=args.lr, head_lr=args.head_lr,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, device=args.device,
        coral_layers=args.coral_layers, threads=args.threads, loader_workers=args.loader_workers,
    )  # fmt: skip
    torch.set_num_threads(cfg.threads)
    registry = ModelRegistry(args.registry)
    command = recipe_command("model_store.distill.train", argv, drop_options=["--registry"], drop_switches=["--resume"])
    if args.what == "teachers":
        from model_store.distill.train_teachers import train_teacher

        for name in args.only or cfg.taxonomy.teachers:
            m = train_teacher(cfg, name, args.out / name, registry, args.version, command, args.resume,
                              init_version=args.init_version)  # fmt: skip
            print(f"registered {m.ref}: {m.metrics}", flush=True)
    elif args.what == "router":
        if args.init_version:
            raise SystemExit("--init-version applies to teachers and students")
        from model_store.distill.train_teachers import train_router

        m = train_router(cfg, args.out, registry, args.version, command, args.resume)
        print(f"registered {m.ref}: {m.metrics}", flush=True)
    else:
        from model_store.distill.train_student import train_student

        m = train_student(cfg, args.name, args.out, registry, args.version, args.teacher_version, command,
                          args.resume, init_version=args.init_version,
                          teacher_pins=parse_pins(args.teacher_pin))  # fmt: skip
        print(f"registered {m.ref}: {m.metrics}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
