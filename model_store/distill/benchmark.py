"""Benchmark: routed teachers vs oracle routing vs the unified student(s) vs ImageNet Lite0.

``python -m model_store.distill.benchmark --style plain|seller --gallery-size 10000 --queries 2000
--out runs/bench/plain``. Queries are Fashion-MNIST TEST items, the gallery is TRAIN items, both in
the chosen style (plain catalog items, or seller photos with held-out backgrounds for the test
split). ``--queries-from val`` is for choosing between candidate models without touching the test
split: queries are the held-out validation items of the train split, the gallery the rest of it.
Exact cosine KNN with k=20 voting (seed 000 [0069]) and mAP@R. The routed system searches only the
gallery of the category its router predicts; oracle routing uses the true category.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_store.backbones import imagenet_lite0_weights_path
from model_store.distill.config import N_TRAIN, RecipeConfig, held_out_split
from model_store.distill.data import ImageSource
from model_store.distill.paired import paired_interval
from model_store.distill.retrieval import knn_vote, map_at_r, similarities
from model_store.distill.teachers import TeacherSet
from model_store.embedding_loading import load_router, load_teacher_nets, preprocess_of, teacher_parents
from model_store.embedding_models import BASELINE_REF, SHIPPED_STUDENT_REF, load_embedding_model
from model_store.embedding_nets import count_params
from model_store.preprocess import PreprocessSpec
from model_store.registry import DEFAULT_ROOT, ModelRegistry


def embed_batches(fn, images: np.ndarray, spec, batch: int, device: str = "cpu") -> tuple[torch.Tensor, float]:
    """(outputs on the CPU, seconds): each batch goes to ``device``; copying it back waits for it."""
    outs, t0 = [], time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = spec.normalise_uint8(images[start : start + batch]).to(device)
            outs.append(fn(x, start).float().cpu())
    return torch.cat(outs), time.perf_counter() - t0


def sample_items(items: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``items`` without replacement (all of them when n >= len), sorted."""
    if n >= len(items):
        return np.sort(items)
    return np.sort(items[np.random.default_rng(seed).choice(len(items), n, replace=False)])


def draw_items(
    cfg: RecipeConfig, spec: PreprocessSpec, queries_from: str, gallery_size: int, queries: int, seed: int
) -> tuple[ImageSource, ImageSource, np.ndarray, np.ndarray]:
    """(gallery source, query source, gallery items, query items): test queries against the train
    split, or (``queries_from="val"``) held-out train items against the training pool."""
    train_src = ImageSource("train", spec)
    if queries_from == "test":
        g_items, q_items, q_src = np.arange(N_TRAIN), np.arange(10_000), ImageSource("test", spec)
    else:
        (g_items, q_items), q_src = held_out_split(cfg), train_src
    return train_src, q_src, sample_items(g_items, gallery_size, seed), sample_items(q_items, queries, seed + 1)


def by_category(teachers: TeacherSet, cats: torch.Tensor):
    """An ``embed_batches`` function: each image embedded by the teacher(s) of ``cats[its index]``."""
    return lambda x, s: teachers(x, teachers.assignments_for_categories(cats[s : s + len(x)].tolist()))[0]


def _bytes(registry: ModelRegistry, refs: list[str]) -> int:
    return registry.total_bytes(refs)


def knn_scores(emb_q, emb_g, q_fine, g_fine, to_cat, allowed, k, n_fine) -> tuple[dict[str, Any], np.ndarray]:
    """(the saved row of scores, whether each query's fine vote is right: for paired comparisons)."""
    sims = similarities(emb_q, emb_g, allowed)
    fine_pred = knn_vote(sims, g_fine, n_fine, k)
    cat_pred = knn_vote(sims, to_cat[g_fine], int(to_cat.max()) + 1, k)
    q_cat = to_cat[q_fine]
    per_cat = {int(c): float((fine_pred[q_cat == c] == q_fine[q_cat == c]).float().mean()) for c in q_cat.unique()}
    per_class = {int(c): float((fine_pred[q_fine == c] == c).float().mean()) for c in q_fine.unique()}
    correct = fine_pred == q_fine
    return {
        "fine_acc": float(correct.float().mean()),
        "coarse_acc": float((cat_pred == q_cat).float().mean()),
        "map_at_r": map_at_r(sims, q_fine, g_fine),
        "fine_acc_by_category": per_cat,
        "fine_acc_by_class": per_class,
    }, correct.numpy()


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    dev = args.device
    registry = ModelRegistry(args.registry)
    main_ref = args.students[0]
    manifest = registry.load_manifest(main_ref)
    cfg = RecipeConfig.from_dict(manifest.config)
    tax, spec = cfg.taxonomy, preprocess_of(manifest)
    to_cat = torch.tensor(tax.fine_to_category_index())
    train_src, q_src, g_idx, q_idx = draw_items(cfg, spec, args.queries_from, args.gallery_size, args.queries,
                                                args.seed)  # fmt: skip
    t0 = time.perf_counter()
    g_img = train_src.style(args.style, g_idx, 1000 + args.seed)
    q_img = q_src.style(args.style, q_idx, 2000 + args.seed)
    g_fine = torch.from_numpy(train_src.labels(g_idx).astype(np.int64))
    q_fine = torch.from_numpy(q_src.labels(q_idx).astype(np.int64))
    print(f"rendered {len(g_img)} gallery + {len(q_img)} query images in {time.perf_counter() - t0:.0f}s", flush=True)
    n_fine, b = len(tax.class_names), args.batch_size
    g_cat, q_cat = to_cat[g_fine], to_cat[q_fine]
    rows: dict[str, dict[str, Any]] = {}
    correct: dict[str, np.ndarray] = {}

    # -- FIG. 1 routing: router -> teacher(s) of the category -> that category's gallery ------------
    teacher_refs = teacher_parents(manifest)
    nets = load_teacher_nets(registry, teacher_refs)
    # on CUDA one input shape per teacher: every new sub-batch size costs seconds of kernel set-up
    teachers = TeacherSet(nets, tax, whole_batch=dev.startswith("cuda")).to(dev).eval()
    router = load_router(registry, args.router)[0].to(dev)

    emb_g_t, _ = embed_batches(by_category(teachers, g_cat), g_img, spec, b, dev)
    route, t_router = embed_batches(lambda x, s: router(x).argmax(1, keepdim=True), q_img, spec, b, dev)
    route = route[:, 0].long()
    emb_q_routed, t_routed = embed_batches(by_category(teachers, route), q_img, spec, b, dev)
    emb_q_oracle, t_oracle = embed_batches(by_category(teachers, q_cat), q_img, spec, b, dev)
    teacher_params = sum(count_params(n) for n in nets.values())
    router_params = count_params(router)
    for name, emb_q, cats, secs, params, refs in (
        ("routed teachers", emb_q_routed, route, t_router + t_routed, teacher_params + router_params,
         [*teacher_refs, args.router]),
        ("oracle-routed teachers", emb_q_oracle, q_cat, t_oracle, teacher_params, teacher_refs),
    ):  # fmt: skip
        row, correct[name] = knn_scores(emb_q, emb_g_t, q_fine, g_fine, to_cat, cats[:, None] == g_cat[None, :],
                                        args.k, n_fine)  # fmt: skip
        row.update(params=params, bytes=_bytes(registry, refs), images_per_s=len(q_img) / secs, models=refs)
        rows[name] = row
    rows["routed teachers"]["router_acc"] = float((route == q_cat).float().mean())

    # -- unified students and the ImageNet baseline: one model, one gallery ------------------------
    refs = list(args.students) + ([] if args.skip_baseline else [BASELINE_REF])
    for ref in refs:
        model = load_embedding_model(ref, image_size=spec.image_size, registry=registry)
        module = model.module.to(dev).eval()
        emb_g, _ = embed_batches(lambda x, s, m=module: m(x), g_img, spec, b, dev)
        emb_q, secs = embed_batches(lambda x, s, m=module: m(x), q_img, spec, b, dev)
        row, one_model = knn_scores(emb_q, emb_g, q_fine, g_fine, to_cat, None, args.k, n_fine)
        stored = imagenet_lite0_weights_path().stat().st_size if ref == BASELINE_REF else _bytes(registry, [ref])
        row.update(params=count_params(module), bytes=stored, images_per_s=len(q_img) / secs, models=[ref])
        for key, system in (("vs_routed", "routed teachers"), ("vs_oracle", "oracle-routed teachers")):
            row[key] = paired_interval(correct[system], one_model)  # (diff, 2.5 %, 97.5 %) of fine acc
        rows[("unified " if ref != BASELINE_REF else "") + ref] = row
        print(f"{ref}: fine {row['fine_acc']:.4f}", flush=True)
    return {
        "style": args.style, "queries_from": args.queries_from, "gallery_size": args.gallery_size,
        "queries": args.queries, "k": args.k,
        "seed": args.seed, "image_size": spec.image_size, "categories": list(tax.categories),
        "threads": args.threads, "device": args.device,
        "command": "python -m model_store.distill.benchmark " + shlex.join(args.argv),
        "systems": rows,
    }  # fmt: skip


def _points(interval: list[float] | tuple[float, float, float]) -> str:
    diff, low, high = (100 * v for v in interval)
    return f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]"


def to_markdown(result: dict[str, Any]) -> str:
    cats = result["categories"]
    head = ["system", "fine acc", "coarse acc", "mAP@R", "router acc", *[f"fine acc {c}" for c in cats],
            "fine vs routed, pts [95 %]", "fine vs oracle, pts [95 %]", "params", "MB stored", "img/s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result["systems"].items():
        by_cat = [f"{r['fine_acc_by_category'].get(i, float('nan')):.4f}" for i in range(len(cats))]
        router = f"{r['router_acc']:.4f}" if "router_acc" in r else "-"
        versus = [_points(r[key]) if key in r else "-" for key in ("vs_routed", "vs_oracle")]
        size = [f"{r['params'] / 1e6:.2f}M", f"{r['bytes'] / 1e6:.1f}", f"{r['images_per_s']:.0f}"]
        cells = [name, f"{r['fine_acc']:.4f}", f"{r['coarse_acc']:.4f}", f"{r['map_at_r']:.4f}", router, *by_cat,
                 *versus, *size]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_store.distill.benchmark", description=__doc__)
    p.add_argument("--style", choices=["plain", "seller"], required=True)
    p.add_argument(
        "--queries-from",
        choices=["test", "val"],
        default="test",
        help="val: held-out train items as queries, for model selection (never the test split)",
    )
    p.add_argument("--gallery-size", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=2_000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    p.add_argument(
        "--students", nargs="+", default=[SHIPPED_STUDENT_REF], help="first one names the teachers (parents)"
    )
    p.add_argument("--router", default="router@1")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (fp32 either way; KNN runs on the CPU)")
    p.add_argument("--skip-baseline", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    table = to_markdown(result)
    head = f"style: {result['style']}, queries: {result['queries_from']} split"
    (args.out / "results.md").write_text(f"{head}\n\n{table}\n`{result['command']}`\n")
    print(table, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
