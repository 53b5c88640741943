"""Benchmark the shipped quality models on held-out generated photos and on real photographs.

    python -m model_store.quality.benchmark --out runs/quality

Test data: Fashion-MNIST test items on the held-out background photos (never trained on). Prints
and writes ``benchmark.json``, ``benchmark.md`` and ``photo_grid.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_store.quality.bench_metrics import (
    background_metrics,
    infer_all,
    position_metrics,
    robustness,
    visual_metrics,
)
from model_store.quality.bench_report import markdown
from model_store.quality.bench_speed import measure_speed
from model_store.quality.brisque_adapter import brisque_scores
from model_store.quality.data import DataSpec, load_data
from model_store.quality.photo_grid import save_grid, unseen_photos
from model_store.quality.scorer import DEFAULT_REFS, QualityModels, load_module
from model_store.registry import DEFAULT_ROOT, ModelRegistry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model_store.quality.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/quality"))
    p.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--background", default=DEFAULT_REFS["background"])
    p.add_argument("--position", default=DEFAULT_REFS["position"])
    p.add_argument("--visual", default=DEFAULT_REFS["visual"])
    p.add_argument("--visual-no-twin", default="quality-visual-notwin@1", help="ablation model ('' to skip)")
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--n-brisque", type=int, default=2000, help="test images also scored by BRISQUE")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--speed-batch", type=int, default=32)
    p.add_argument("--update-manifests", action="store_true", help="store the test figures in the manifests")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    registry = ModelRegistry(args.registry)
    refs = {"background": args.background, "position": args.position, "visual": args.visual}
    models = QualityModels.load(registry, refs)
    spec = DataSpec("test", args.n_test, size=models.input_size)
    test = load_data(spec)
    raw = infer_all(models, test.images)
    results = models.results(raw, [None] * len(test))
    print(f"scoring {len(test)} test images with BRISQUE (first {args.n_brisque})...", file=sys.stderr)
    brisque = brisque_scores(test.images[: args.n_brisque]) if args.n_brisque else None
    report: dict[str, Any] = {
        "models": dict(models.refs), "test_data": spec.describe(), "scoring": models.scoring.to_dict(),
        "background": background_metrics(raw, test),
        "position": position_metrics(raw, test, results),
        "visual": visual_metrics(raw, test, brisque),
    }  # fmt: skip
    ablation = {"twin": robustness(models.visual, test, models.preprocess)}
    if args.visual_no_twin:
        module, _, ref = load_module(registry, args.visual_no_twin, "visual")
        ablation["no_twin"] = robustness(module, test, models.preprocess) | {"model": ref}
    ablation["twin"]["model"] = models.refs["visual"]
    report["twin_ablation"] = ablation
    rng = np.random.default_rng(0)
    report["speed"] = measure_speed(models, test.images[rng.choice(len(test), args.speed_batch, replace=False)])

    names, photos = zip(*unseen_photos(), strict=True)
    batch = models.to_uint8(list(photos))
    photo_results = models.score_batch(batch, [None] * len(names))
    args.out.mkdir(parents=True, exist_ok=True)
    save_grid(args.out / "photo_grid.png", list(names), batch, photo_results)
    report["real_photos"] = {n: r.to_dict() for n, r in zip(names, photo_results, strict=True)}

    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "benchmark.md").write_text(text)
    print(text)
    if args.update_manifests:
        registry.update_metrics(models.refs["background"], {"test": report["background"]})
        registry.update_metrics(models.refs["position"], {"test": report["position"]})
        registry.update_metrics(models.refs["visual"], {"test": report["visual"] | {"robustness": ablation["twin"]}})
        if "no_twin" in ablation:
            registry.update_metrics(ablation["no_twin"]["model"], {"test": {"robustness": ablation["no_twin"]}})
    return report


if __name__ == "__main__":
    main()
