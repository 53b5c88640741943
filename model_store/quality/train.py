"""Train one quality model and store it as a registry version.

    python -m model_store.quality.train background|position|visual [--no-twin] [--steps N] ...

Data: seller photos rendered from Fashion-MNIST train items on the train background photos
(``data.DataSpec``; validation items are held out of the train split). Uses the shared trainer
(seeds, progress bar, periodic validation, checkpoints + ``--resume``), writes ``report.png`` and
``metrics.json`` in the run directory and saves the served network with its manifest (sha256,
preprocessing, the exact command) in the registry.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from model_store.datasets.seller_spec import BACKGROUND_CLASSES
from model_store.preprocess import PreprocessSpec
from model_store.quality.batches import BatchSampler
from model_store.quality.data import GENERATORS, DataSpec, load_data
from model_store.quality.task_background import BackgroundTask
from model_store.quality.task_position import PositionTask
from model_store.quality.task_visual import VisualTask
from model_store.registry import DEFAULT_ROOT, ModelRegistry
from model_store.training import TrainConfig, Trainer, save_report, seed_everything
from model_store.training.command import recipe_command

DEFAULT_STEPS = {"background": 5000, "position": 4000, "visual": 2000}


# where a run goes and how fast, not what it learns: a checkpoint resumes whatever these say
_RUN_ONLY_ARGS = {"threads", "checkpoint_every", "resume", "run_dir", "registry", "version", "overwrite", "no_save"}


def make_task(args: argparse.Namespace) -> Any:
    if args.model == "background":
        return BackgroundTask(recolour=args.recolour, grid=args.grid)
    if args.model == "position":
        return PositionTask(image_size=args.size)
    return VisualTask(twin=not args.no_twin, image_size=args.size)


def default_name(args: argparse.Namespace) -> str:
    return f"quality-{args.model}" + ("-notwin" if args.model == "visual" and args.no_twin else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model_store.quality.train", description=__doc__.split("\n")[0])
    p.add_argument("model", choices=["background", "position", "visual"])
    p.add_argument("--no-twin", action="store_true", help="visual: plain regression, no twin (the ablation)")
    p.add_argument("--recolour", type=float, default=0.5, help="background: colour augmentation strength (0: off)")
    p.add_argument("--grid", type=int, default=2, help="background: side of the pooled grid before the classifier")
    p.add_argument("--steps", type=int, default=None, help="default: " + str(DEFAULT_STEPS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="input side in pixels (multiple of 16)")
    p.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        help="train/val generator settings (default: the task's; background: colour_scenes)",
    )
    p.add_argument("--n-train", type=int, default=54000)
    p.add_argument("--n-val", type=int, default=3000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/quality/<name>")
    p.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--name", default=None, help="registry name (default quality-<model>[-notwin])")
    p.add_argument("--version", default="1")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-save", action="store_true", help="train and report only")
    return p.parse_args(argv)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = args.name or default_name(args)
    run_dir = args.run_dir or Path("runs/quality") / name
    steps = args.steps or DEFAULT_STEPS[args.model]
    task, preprocess = make_task(args), PreprocessSpec(image_size=args.size, scaling="minus_one_one")
    generator = args.generator or task.generator
    train_spec, val_spec = (
        DataSpec("train", args.n_train, size=args.size, generator=generator),
        DataSpec("val", args.n_val, size=args.size, generator=generator),
    )
    train_data, val_data = load_data(train_spec), load_data(val_spec)

    seed_everything(args.seed)  # before any layer is made: torch's own start seed differs per process
    model = task.build().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    sampler = BatchSampler(train_data, args.batch_size, preprocess, seed=args.seed, with_clean=task.with_clean)
    config = TrainConfig(
        total_steps=steps, seed=args.seed, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
        checkpoint_dir=run_dir / "checkpoints", select_metric=task.select_metric,
        run_identity={k: v for k, v in vars(args).items() if k not in _RUN_ONLY_ARGS},
    )  # fmt: skip
    trainer = Trainer(
        model, optimizer, scheduler, task.step, sampler, config,
        eval_fn=lambda m, _step: scalar_metrics(task.evaluate(m, val_data, preprocess)),
    )  # fmt: skip
    started = time.perf_counter()
    result = trainer.fit(resume=args.resume)
    seconds = time.perf_counter() - started
    model.load_state_dict(trainer.final_state())
    model.eval()
    metrics = task.evaluate(model, val_data, preprocess)
    confusions = {}
    if "confusion" in metrics:
        confusions["validation confusion"] = (metrics["confusion"], list(BACKGROUND_CLASSES))
    save_report(
        run_dir / "report.png",
        result.history,
        confusions,
        title=f"{name}: {json.dumps(scalar_metrics(metrics))[:150]}",
    )
    summary = {
        "name": name, "steps": steps, "best_step": result.best_step, "train_seconds": round(seconds, 1),
        "images_per_second": round(steps * args.batch_size / max(seconds, 1e-9), 1), "val": metrics,
    }  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "val"} | {"val": scalar_metrics(metrics)}))
    if not args.no_save:
        serving = task.serving_module(model)
        manifest = ModelRegistry(args.registry).save(
            name,
            args.version,
            serving.state_dict(),
            {
                "kind": task.kind,
                "architecture": task.architecture,
                "config": task.model_config,
                "data": {"train": train_spec.describe(), "val": val_spec.describe()},
                "metrics": {"val": metrics},
                "parents": [],
                "preprocess": preprocess,
                "command": recipe_command(
                    "model_store.quality.train",
                    sys.argv[1:] if argv is None else argv,
                    drop_options=["--registry", "--run-dir"],
                    drop_switches=["--resume", "--overwrite"],
                ),
                "extra": {
                    "training": {
                        **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                        "steps": steps,
                        "best_step": result.best_step,
                        **getattr(task, "train_config", {}),
                    },
                    "train_seconds": round(seconds, 1),
                },
            },  # fmt: skip
            overwrite=args.overwrite,
            extra_files={"report.png": run_dir / "report.png"},
        )
        print(f"saved {manifest.ref} to {args.registry}", file=sys.stderr)
    return summary


if __name__ == "__main__":
    main()
