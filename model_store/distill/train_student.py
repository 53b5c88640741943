"""Distil the unified student from the category teachers: L = L2 + gamma * L_coral (seed 000 [0062]-[0067]).

The student starts from ImageNet Lite0 weights plus a projection to the teachers' dimension. Each
step runs the teachers in inference mode on the batch (each sample through its category's
teacher(s)), then matches the student to them: L2 on the unit-norm vectors, CORAL on the
designated blocks (pooled, mapped to 100-d by the shared frozen FC). No labels reach the loss;
the true fine class only chooses the teacher, as in [0061]. The kept weights are those with the
smallest validation loss L, as in [0059].

``train_student`` is the recipe's run over every teacher of the taxonomy; ``distil`` is the same run
for any ``StudentRun`` (a subset of the teachers on the fine classes they serve, another init),
which is what fusion (``model_store.distill.fusion``) uses.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from model_store.distill.config import (
    VAL_RENDER_SEED,
    RecipeConfig,
    adamw_onecycle,
    data_description,
    data_split,
    item_weights,
    train_config,
)
from model_store.distill.coral import CoralProjector, multi_layer_coral
from model_store.distill.data import ImageSource, MixedBatches, eval_images
from model_store.distill.jitter import affine_jitter
from model_store.distill.mixup import category_mixup
from model_store.distill.taxonomy import Taxonomy
from model_store.distill.teachers import TeacherSet
from model_store.embedding_loading import EMBEDDING_ARCH, load_teacher_nets, teacher_name
from model_store.embedding_nets import build_embedding_net, fixed_prototypes
from model_store.registry import Manifest, ModelRegistry
from model_store.training import Trainer, confusion_matrix, save_report, seed_everything


def teacher_refs(taxonomy: Taxonomy, version: str, pins: Mapping[str, str] | None = None) -> dict[str, str]:
    """Registry ref of each teacher: ``version``, or a pinned one (one retrained teacher among older ones)."""
    pins = pins or {}
    unknown = set(pins) - set(taxonomy.teachers)
    if unknown:
        raise ValueError(f"pinned teachers {sorted(unknown)} are not in the taxonomy: {list(taxonomy.teachers)}")
    return {t: f"teacher-{t}@{pins.get(t, version)}" for t in taxonomy.teachers}


def load_teacher_set(
    registry: ModelRegistry, cfg: RecipeConfig, refs: Iterable[str], device: str, only: Collection[str] | None = None
) -> TeacherSet:
    """The frozen teachers named by ``refs`` (see ``teacher_refs``), ready to embed on ``device``.

    ``only``: these refs are a subset of the taxonomy's teachers (see ``TeacherSet``).
    """
    nets = load_teacher_nets(registry, refs)
    teachers = TeacherSet(nets, cfg.taxonomy, whole_batch=device.startswith("cuda"), only=only).to(device).eval()
    for p in teachers.parameters():
        p.requires_grad_(False)
    return teachers


def teacher_targets(
    teachers: TeacherSet, x: torch.Tensor, assigned: list[tuple[str, ...]], taps: list[int], mirror: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """vec_source and pooled taps; with ``mirror`` averaged over the image and its left-right mirror.

    Catalog items are left-right symmetric in meaning, so the mirror-averaged teacher is a steadier
    target than either view: the student learns the view-averaged function in one pass.
    """
    v, pooled = teachers(x, assigned, taps)
    if not mirror:
        return v, pooled
    v_m, pooled_m = teachers(x.flip(-1), assigned, taps)
    return F.normalize(v + v_m, dim=1), [(a + b) / 2 for a, b in zip(pooled, pooled_m, strict=True)]


def _batched_teacher(teachers: TeacherSet, x: torch.Tensor, fine: torch.Tensor, taps, device: str, mirror: bool):
    vecs, pooled = [], []
    for xs, fs in zip(x.split(256), fine.split(256), strict=True):
        v, p = teacher_targets(teachers, xs.to(device), teachers.assignments(fs.tolist()), taps, mirror)
        vecs.append(v.cpu())
        pooled.append([t.cpu() for t in p])
    return torch.cat(vecs), [torch.cat(layer) for layer in zip(*pooled, strict=True)]


def warm_start(student: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an earlier student; only a residual correction head it did not have may start fresh."""
    missing, unexpected = student.load_state_dict(state, strict=False)
    fresh = [k for k in missing if not k.startswith("correction.")]
    if fresh or unexpected:
        raise ValueError(f"warm start does not fit this student: missing {fresh}, unexpected {list(unexpected)}")


def distillation_loss(
    student: torch.nn.Module, teachers: TeacherSet, projector: CoralProjector, x: torch.Tensor,
    fine: torch.Tensor, taps: list[int], gamma: float, rng: np.random.Generator, mirror_targets: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """L = L2 + gamma * L_coral on one batch; the true fine class only picks the teacher ([0061])."""
    with torch.no_grad():
        v_src, p_src = teacher_targets(teachers, x, teachers.assignments(fine.tolist(), rng), taps, mirror_targets)
    out, tapped = student.forward_with_taps(x, taps)
    l2 = (v_src - F.normalize(out.float(), dim=1)).pow(2).sum(dim=1).mean()
    if not taps:
        return l2, {"l2": float(l2.detach())}
    coral = multi_layer_coral(projector(p_src), projector(tapped))
    return l2 + gamma * coral, {"l2": float(l2.detach()), "coral": float(coral.detach())}


def new_student(cfg: RecipeConfig) -> torch.nn.Module:
    """ImageNet trunk + fresh projection, seeded first: torch's own start seed differs per process."""
    seed_everything(cfg.seed + 200)
    return build_embedding_net(cfg.image_size, cfg.embed_dim, pretrained=True, work_size=cfg.work_size,
                               head_hidden=cfg.head_hidden)  # fmt: skip


@dataclass(frozen=True)
class StudentRun:
    """What a distillation run draws on beyond its recipe: its teachers, its start, the items it sees."""

    teachers: tuple[str, ...]  # registry refs; a subset of the taxonomy's teachers is allowed
    init_ref: str | None = None  # a registered student to warm-start from; None: ImageNet Lite0
    classes: tuple[int, ...] | None = None  # fine classes trained and validated on; None: all
    # keep the warm start's BatchNorm statistics: a short run on a subset would otherwise re-estimate them
    # from small batches of other items, which moves every feature before the weights can follow
    freeze_norm_stats: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)  # added to the manifest's ``data``
    extra: Mapping[str, Any] = field(default_factory=dict)  # added to the manifest's ``extra``


def train_student(
    cfg: RecipeConfig, name: str, out: Path, registry: ModelRegistry, version: str, teacher_version: str,
    command: str, resume: bool, init_version: str | None = None, teacher_pins: Mapping[str, str] | None = None,
) -> Manifest:  # fmt: skip
    """The recipe's student: every teacher of the taxonomy, all items; ``init_version`` of the same name."""
    refs = tuple(teacher_refs(cfg.taxonomy, teacher_version, teacher_pins).values())
    init_ref = f"{name}@{init_version}" if init_version else None
    return distil(cfg, name, out, registry, version, command, resume, StudentRun(refs, init_ref))


def freeze_norm_stats(model: torch.nn.Module) -> None:
    """BatchNorm layers normalise with, and keep, their running statistics; their scale and shift still train."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.eval()


class EmptySplitError(ValueError):
    """The chosen fine classes leave no training or no validation item."""


def _only_classes(source: ImageSource, items: np.ndarray, classes: tuple[int, ...] | None, what: str) -> np.ndarray:
    if classes is None:
        return items
    kept = items[np.isin(source.labels(items), classes)]
    if not len(kept):
        raise EmptySplitError(f"no {what} item of fine classes {list(classes)} in {len(items)}; val_items too small?")
    return kept


def distil(
    cfg: RecipeConfig, name: str, out: Path, registry: ModelRegistry, version: str, command: str, resume: bool,
    run: StudentRun,
) -> Manifest:  # fmt: skip
    """Distil ``run.teachers`` into a student on the items of ``run.classes`` and register it as ``name@version``."""
    taps = list(cfg.coral_layers)
    parent_teachers = list(run.teachers)
    only = [teacher_name(ref) for ref in parent_teachers]
    teachers = load_teacher_set(registry, cfg, parent_teachers, cfg.device, only=only)
    source = ImageSource("train", cfg.preprocess)
    pool, val = (_only_classes(source, items, run.classes, what)
                 for items, what in zip(data_split(cfg), ("training", "validation"), strict=True))  # fmt: skip
    steps = cfg.steps(cfg.samples_per_epoch or len(pool))
    weights = item_weights(cfg, source.labels(pool))
    batches = MixedBatches(source, pool, cfg.batch_size, cfg.seed + 200, cfg.plain_fraction, weights)
    student = new_student(cfg).to(cfg.device)
    init_ref = run.init_ref
    if init_ref:  # a warm start: continue distilling a registered student (itself from ImageNet weights)
        warm_start(student, registry.load_state(init_ref))
    projector = CoralProjector([student.backbone.block_channels(i) for i in taps], cfg.coral_dim).to(cfg.device)
    opt, sched = adamw_onecycle(student.backbone, student.heads(), cfg, steps)

    x_val, fine_val = eval_images(source, val, VAL_RENDER_SEED)
    with torch.inference_mode():
        v_val, p_val = _batched_teacher(teachers, x_val, fine_val, taps, cfg.device, cfg.mirror_targets)
        c_val = [c.cpu() for c in projector([p.to(cfg.device) for p in p_val])]
    protos = fixed_prototypes(len(cfg.taxonomy.class_names) + 1, cfg.embed_dim)[:-1]
    teacher_proto_acc = float(((v_val @ protos.T).argmax(1) == fine_val).float().mean())

    to_category = torch.tensor(cfg.taxonomy.fine_to_category_index())

    def step_fn(model: torch.nn.Module, batch: Any, step: int):
        if run.freeze_norm_stats:  # again each step: the trainer puts the model back in train mode after evals
            freeze_norm_stats(model)
        x, fine = batch
        rng = np.random.default_rng((cfg.seed, step, 11))
        mix_rng = np.random.default_rng((cfg.seed, step, 13))
        x = category_mixup(x.to(cfg.device), to_category[fine], cfg.mixup_alpha, mix_rng)
        x = affine_jitter(x, cfg.affine_jitter, np.random.default_rng((cfg.seed, step, 17)))
        return distillation_loss(model, teachers, projector, x, fine, taps, cfg.gamma, rng, cfg.mirror_targets)

    def evaluate(model: torch.nn.Module, step: int) -> dict[str, float]:
        outs, tapped = [], []
        for xs in x_val.split(256):
            o, t = model.forward_with_taps(xs.to(cfg.device), taps)
            outs.append(F.normalize(o.float(), dim=1).cpu())
            tapped.append([c.cpu() for c in projector(t)])
        v = torch.cat(outs)
        l2 = float((v_val - v).pow(2).sum(1).mean())
        coral = float(multi_layer_coral(c_val, [torch.cat(c) for c in zip(*tapped, strict=True)])) if taps else 0.0
        acc = float(((v @ protos.T).argmax(1) == fine_val).float().mean())
        return {"val_l2": l2, "val_coral": coral, "val_proto_acc": acc, "neg_val_loss": -(l2 + cfg.gamma * coral)}

    init_eval = None
    if init_ref:  # where the warm start stands on this run's validation items, before any step
        student.eval()
        with torch.inference_mode():
            init_eval = evaluate(student, 0)
        student.train()
    tcfg = train_config(cfg, steps, out, "neg_val_loss", name, init_ref, teachers=parent_teachers)
    trainer = Trainer(student, opt, sched, step_fn, batches, tcfg, eval_fn=evaluate)
    result = trainer.fit(resume=resume)
    student.load_state_dict(trainer.final_state())
    student.eval()
    final = {k: v for k, v in result.history["eval"][-1].items() if k != "step"}
    with torch.inference_mode():
        best = evaluate(student, steps)
        pred = torch.cat([(F.normalize(student(x.to(cfg.device)).float().cpu(), dim=1) @ protos.T).argmax(1)
                          for x in x_val.split(256)])  # fmt: skip
    names = list(cfg.taxonomy.class_names)
    cm = confusion_matrix(fine_val.numpy(), pred.numpy(), len(names))
    report = save_report(out / "report.png", result.history, {f"{name} (nearest prototype), val": (cm, names)},
                         f"{name}: gamma={cfg.gamma}, CORAL layers {taps}")  # fmt: skip
    metrics = {**best, "best_step": result.best_step, "steps": steps, "last_eval": final,
               "teacher_val_proto_acc": teacher_proto_acc,
               "train_seconds": round(result.train_seconds, 1)}  # fmt: skip
    if init_eval is not None:
        metrics["init_eval"] = init_eval
    history = out / "history.json"  # the curves as numbers, for anything that draws or compares them
    history.write_text(json.dumps(result.history) + "\n")
    parents = parent_teachers + ([init_ref] if init_ref else [])
    return registry.save(name, version, student.state_dict(), {
        "kind": "student", "architecture": EMBEDDING_ARCH, "config": cfg.to_dict(),
        "data": {**data_description(cfg, steps * cfg.batch_size), **run.data}, "metrics": metrics,
        "parents": parents, "preprocess": cfg.preprocess, "command": command,
        "extra": {"loss": "L = L2(unit vec_source, unit vec_target) + gamma * CORAL (seed 000 [0062]-[0067])",
                  "init_from": init_ref or "ImageNet Lite0", **run.extra},
    }, overwrite=True, extra_files={"report.png": report, "history.json": history})  # fmt: skip
