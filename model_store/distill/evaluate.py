"""``catalog models evaluate``: score registered embedding models once per version and protocol.

Why here and not in the console: a person compares candidates (students fused from other teacher
subsets, say) against the served model in a web page, and that page must open instantly and show
figures that agree with ``catalog bench distill``. So the figures are computed by the benchmark's
own functions (``draw_items``, ``embed_batches``, ``knn_scores``) on the same queries, and stored
beside each version (``model_store.evaluations`` is the file format). Every model of one run is
scored on images rendered once; a stored evaluation whose weights and protocol still match is not
recomputed (``--force`` does).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_store.distill.benchmark import draw_items, embed_batches, knn_scores
from model_store.distill.config import N_TRAIN, RecipeConfig
from model_store.distill.eval_examples import choose_examples, image_key, save_image
from model_store.distill.retrieval import knn_vote, similarities
from model_store.distill.taxonomy import Taxonomy
from model_store.embedding_loading import EMBEDDING_ARCH
from model_store.embedding_models import EmbeddingModel, UnknownModelError, load_embedding_model
from model_store.embedding_nets import count_params
from model_store.evaluations import (
    EVALUATION_SCHEMA,
    evaluation_path,
    is_current,
    pack_correct,
    paired_difference,
    protocol_key,
    read_evaluation,
    write_evaluation,
)
from model_store.preprocess import PreprocessSpec
from model_store.registry import WEIGHTS_FILE, Manifest, ModelRegistry

STYLES = ("plain", "seller")
N_TEST = 10_000
GALLERY_RENDER_SEED, QUERY_RENDER_SEED = 1000, 2000  # + the protocol seed, exactly as ``benchmark.run``
Say = Callable[[str], None]


class EvaluationError(Exception):
    """A reason, in one line, why an evaluation cannot run (bad reference, bad protocol)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Protocol:
    """Which queries and gallery, and how they are scored: equal protocols give pairable evaluations."""

    gallery_size: int = 10_000
    queries: int = 2_000
    k: int = 20
    seed: int = 0
    examples: int = 12
    top_k: int = 8

    def __post_init__(self) -> None:
        checks = (
            (1 <= self.gallery_size <= N_TRAIN, f"gallery size must be 1..{N_TRAIN} (train items)"),
            (1 <= self.queries <= N_TEST, f"queries must be 1..{N_TEST} (test items)"),
            (1 <= self.k <= self.gallery_size, "k must be 1..gallery size"),
            (0 <= self.examples <= self.queries, "examples must be 0..queries"),
            (1 <= self.top_k <= self.gallery_size, "top-k must be 1..gallery size"),
        )
        for ok, message in checks:
            if not ok:
                raise EvaluationError(f"bad protocol {asdict(self)}: {message}")

    def to_dict(self) -> dict[str, Any]:
        """The stored ``protocol`` (its hash is ``protocol_key``)."""
        return {**asdict(self), "queries_from": "test", "styles": list(STYLES)}


class QuerySet:
    """The protocol's gallery (train items) and queries (test items), rendered once per image size.

    Every model of one run reads its images from here, so a run renders 12,000 seller photos once
    however many models it scores.
    """

    def __init__(self, protocol: Protocol, say: Say = _stderr) -> None:
        self.protocol, self.say = protocol, say
        self.taxonomy = Taxonomy()  # Fashion-MNIST's fine classes and categories, fixed by the data
        self._images: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        train_src, q_src, self.g_items, self.q_items = self._draw(PreprocessSpec())
        self.g_fine = torch.from_numpy(train_src.labels(self.g_items).astype(np.int64))
        self.q_fine = torch.from_numpy(q_src.labels(self.q_items).astype(np.int64))
        self.to_cat = torch.tensor(self.taxonomy.fine_to_category_index())

    def _draw(self, spec: PreprocessSpec):
        p = self.protocol
        return draw_items(RecipeConfig(), spec, "test", p.gallery_size, p.queries, p.seed)

    def images(self, image_size: int, style: str) -> tuple[np.ndarray, np.ndarray]:
        """(gallery, query) uint8 images of ``style`` at ``image_size``; rendered on first use."""
        if image_size not in self._images:
            train_src, q_src, _, _ = self._draw(PreprocessSpec(image_size))
            seed, rendered = self.protocol.seed, {}
            for name in STYLES:
                t0 = time.perf_counter()
                rendered[name] = (train_src.style(name, self.g_items, GALLERY_RENDER_SEED + seed),
                                  q_src.style(name, self.q_items, QUERY_RENDER_SEED + seed))  # fmt: skip
                secs = time.perf_counter() - t0
                self.say(f"rendered {len(self.g_items)} gallery + {len(self.q_items)} query images, "
                         f"{name}, {image_size} px, in {secs:.0f}s")  # fmt: skip
            self._images[image_size] = rendered
        return self._images[image_size][style]

    def render_seed(self, split: str) -> int:
        return (GALLERY_RENDER_SEED if split == "train" else QUERY_RENDER_SEED) + self.protocol.seed


def score_style(
    emb_q: torch.Tensor, emb_g: torch.Tensor, q_fine: torch.Tensor, g_fine: torch.Tensor, taxonomy: Taxonomy, k: int
) -> tuple[dict[str, Any], torch.Tensor]:
    """(the stored record of one style, the [Q, G] similarities for the examples' neighbours).

    Fine, coarse, mAP@R and fine per category are ``knn_scores``'s, so they equal the benchmark's;
    coarse per category is the same vote over the categories of the neighbours.
    """
    to_cat = torch.tensor(taxonomy.fine_to_category_index())
    row, correct = knn_scores(emb_q, emb_g, q_fine, g_fine, to_cat, None, k, len(taxonomy.class_names))
    sims = similarities(emb_q, emb_g)
    cat_pred = knn_vote(sims, to_cat[g_fine], int(to_cat.max()) + 1, k)
    q_cat = to_cat[q_fine]
    cats, classes = taxonomy.categories, taxonomy.class_names
    coarse = {cats[int(c)]: float((cat_pred[q_cat == c] == c).float().mean()) for c in q_cat.unique()}
    return {
        "fine_acc": row["fine_acc"],
        "coarse_acc": row["coarse_acc"],
        "map_at_r": row["map_at_r"],
        "fine_acc_by_category": {cats[c]: v for c, v in row["fine_acc_by_category"].items()},
        "coarse_acc_by_category": coarse,
        "fine_acc_by_class": {classes[c]: v for c, v in row["fine_acc_by_class"].items()},
        "fine_correct": pack_correct(correct),
        "n_queries": len(correct),
    }, sims


def _item(queries: QuerySet, split: str, row: int, style: str, image: np.ndarray, root: Path) -> dict[str, Any]:
    items, fine = (queries.g_items, queries.g_fine) if split == "train" else (queries.q_items, queries.q_fine)
    item, label = int(items[row]), int(fine[row])
    key = image_key(style, split, item, queries.render_seed(split), image.shape[0])
    return {"split": split, "item": item, "fine": queries.taxonomy.class_names[label],
            "category": queries.taxonomy.categories[int(queries.to_cat[label])],
            "image": save_image(root, key, image)}  # fmt: skip


def examples(queries: QuerySet, sims: dict[str, torch.Tensor], image_size: int, root: Path) -> list[dict[str, Any]]:
    """The protocol's example queries with this model's top-k neighbours; images written once."""
    p = queries.protocol
    chosen = choose_examples(queries.to_cat[queries.q_fine].numpy(), len(queries.taxonomy.categories), p.examples,
                             p.seed, STYLES)  # fmt: skip
    out = []
    for style, row in chosen:
        g_img, q_img = queries.images(image_size, style)
        top, idx = sims[style][row].topk(p.top_k)
        neighbours = [{**_item(queries, "train", int(j), style, g_img[int(j)], root), "similarity": round(float(s), 4)}
                      for s, j in zip(top, idx, strict=True)]  # fmt: skip
        out.append({"style": style, "query": _item(queries, "test", row, style, q_img[row], root),
                    "neighbours": neighbours})  # fmt: skip
    return out


def evaluate_model(
    registry: ModelRegistry, model: EmbeddingModel, manifest: Manifest, queries: QuerySet, run: dict[str, Any]
) -> dict[str, Any]:
    """The full stored evaluation of one model (``vs_active`` left for the caller)."""
    device, batch, say = run["device"], run["batch_size"], queries.say
    module, spec = model.module.to(device).eval(), model.preprocess
    styles, sims, query_secs, n_queries = {}, {}, 0.0, 0
    for style in STYLES:
        g_img, q_img = queries.images(spec.image_size, style)
        emb_g, _ = embed_batches(lambda x, s, m=module: m(x), g_img, spec, batch, device)
        emb_q, secs = embed_batches(lambda x, s, m=module: m(x), q_img, spec, batch, device)
        styles[style], sims[style] = score_style(emb_q, emb_g, queries.q_fine, queries.g_fine, queries.taxonomy,
                                                 queries.protocol.k)  # fmt: skip
        styles[style]["images_per_s"] = len(q_img) / secs
        query_secs, n_queries = query_secs + secs, n_queries + len(q_img)
        r = styles[style]
        say(f"{manifest.ref} {style}: fine {r['fine_acc']:.4f}  coarse {r['coarse_acc']:.4f}  "
            f"mAP@R {r['map_at_r']:.4f}  ({len(q_img)} queries, {r['images_per_s']:.0f} img/s)")  # fmt: skip
    proto = queries.protocol.to_dict()
    return {
        "schema": EVALUATION_SCHEMA,
        "model_ref": manifest.ref,
        "weights_sha256": manifest.files[WEIGHTS_FILE],
        "protocol": proto,
        "protocol_key": protocol_key(proto),
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": run["command"],
        "device": device,
        "threads": run["threads"],
        "params": count_params(module),
        "bytes": registry.total_bytes([manifest.ref]),
        "images_per_s": n_queries / query_secs,
        "image_size": spec.image_size,
        "categories": list(queries.taxonomy.categories),
        "styles": styles,
        "vs_active": None,
        "examples": examples(queries, sims, spec.image_size, registry.root),
    }


def resolve(registry: ModelRegistry, ref: str) -> Manifest:
    """The registry version ``ref`` names, its files checksum-verified; a clear error otherwise."""
    try:
        if not registry.exists(ref):
            raise UnknownModelError(f"unknown model {ref!r}: no such version in the registry {registry.root}")
        manifest = registry.verify(ref)
    except ValueError as exc:  # a malformed reference
        raise EvaluationError(str(exc)) from exc
    if manifest.architecture != EMBEDDING_ARCH:
        raise EvaluationError(f"{manifest.ref} is a {manifest.architecture!r}, not an embedding model")
    if WEIGHTS_FILE not in manifest.files:
        raise EvaluationError(f"{manifest.ref}: its manifest lists no {WEIGHTS_FILE}")
    return manifest


def vs_active(evaluation: dict[str, Any], active: dict[str, Any] | None) -> dict[str, Any] | None:
    """Fine-accuracy difference to the active model per style, [diff, 2.5 %, 97.5 %]; None against itself."""
    if active is None or active["model_ref"] == evaluation["model_ref"]:
        return None
    return {"ref": active["model_ref"], **{s: list(paired_difference(active, evaluation, s)) for s in STYLES}}


@dataclass
class Outcome:
    ref: str
    status: str  # "computed", "current" (stored one kept) or "updated" (stored figures, new vs_active)
    path: Path
    evaluation: dict[str, Any]


def evaluate_refs(
    registry: ModelRegistry,
    refs: list[str],
    protocol: Protocol,
    against: str | None,
    *,
    force: bool = False,
    device: str = "cpu",
    threads: int = 2,
    batch_size: int = 256,
    command: str = "",
    say: Say = _stderr,
) -> list[Outcome]:
    """Evaluate ``refs`` (and ``against`` first, when its stored evaluation is missing or stale).

    Every reference is resolved and verified before anything is computed, so a typo or a corrupted
    artifact stops the run at once. ``force`` recomputes the named refs, not ``against``.
    """
    torch.set_num_threads(threads)
    manifests = {m.ref: m for m in (resolve(registry, r) for r in refs)}
    base = resolve(registry, against) if against else None
    proto = protocol.to_dict()
    run = {"device": device, "threads": threads, "batch_size": batch_size, "command": command}
    queries: QuerySet | None = None
    stored: dict[str, dict[str, Any]] = {}
    computed: set[str] = set()

    order = ([base] if base is not None else []) + [
        m for ref, m in manifests.items() if base is None or ref != base.ref
    ]
    outcomes = []
    for manifest in order:
        ref = manifest.ref
        previous = read_evaluation(registry.root, manifest.name, manifest.version)
        if is_current(previous, manifest.files[WEIGHTS_FILE], proto) and not (force and ref in manifests):
            stored[ref] = previous
            say(f"{ref}: stored evaluation is current (protocol {protocol_key(proto)}); --force recomputes")
            continue
        queries = queries or QuerySet(protocol, say)
        say(f"{ref}: evaluating ({protocol.queries} queries x {len(STYLES)} styles, gallery {protocol.gallery_size})")
        model = load_embedding_model(ref, registry=registry)
        stored[ref] = evaluate_model(registry, model, manifest, queries, run)
        computed.add(ref)

    active = stored[base.ref] if base is not None else None
    for manifest in order:
        ref, evaluation = manifest.ref, stored[manifest.ref]
        paired = vs_active(evaluation, active) if ref in manifests else evaluation.get("vs_active")
        status = "computed" if ref in computed else "current"
        if status == "current" and paired != evaluation.get("vs_active"):
            status = "updated"
        evaluation = {**evaluation, "vs_active": paired}
        path = evaluation_path(registry.root, manifest.name, manifest.version)
        if status != "current":
            path = write_evaluation(registry.root, manifest.name, manifest.version, evaluation)
        if ref in manifests or status == "computed":
            outcomes.append(Outcome(ref, status, path, evaluation))
        for style in STYLES if paired else ():
            diff, low, high = (100 * v for v in paired[style])
            say(f"{ref} vs {paired['ref']} {style}: fine {diff:+.2f} pts [{low:+.2f}, {high:+.2f}]")
    return outcomes


def summary(outcome: Outcome) -> dict[str, Any]:
    """The line the CLI prints per model: where the file is and its headline figures."""
    ev = outcome.evaluation
    return {
        "ref": outcome.ref,
        "status": outcome.status,
        "path": str(outcome.path),
        "protocol_key": ev["protocol_key"],
        **{f"{s}_fine_acc": round(ev["styles"][s]["fine_acc"], 4) for s in STYLES},
        **{f"{s}_coarse_acc": round(ev["styles"][s]["coarse_acc"], 4) for s in STYLES},
        "vs_active": ev["vs_active"],
    }
