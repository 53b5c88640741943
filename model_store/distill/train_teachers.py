"""Train the category teachers (fine classes of their categories + "other") and the router."""

from __future__ import annotations

from collections.abc import Sequence
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
    train_config,
)
from model_store.distill.data import ImageSource, MixedBatches, eval_images
from model_store.embedding_loading import EMBEDDING_ARCH, ROUTER_ARCH
from model_store.embedding_nets import PrototypeHead, TeacherNet, build_embedding_net, build_router
from model_store.registry import Manifest, ModelRegistry
from model_store.training import Trainer, confusion_matrix, save_report, seed_everything


def new_teacher(cfg: RecipeConfig, classes: Sequence[int]) -> TeacherNet:
    """ImageNet trunk + fresh heads, seeded first: torch's own start seed differs per process."""
    seed_everything(cfg.seed)
    net = build_embedding_net(cfg.image_size, cfg.embed_dim, pretrained=True, drop_connect_rate=cfg.drop_connect)
    return TeacherNet(net, PrototypeHead(classes, len(cfg.taxonomy.class_names), cfg.embed_dim))


def new_router(cfg: RecipeConfig) -> torch.nn.Module:
    seed_everything(cfg.seed + 100)
    return build_router(cfg.image_size, len(cfg.taxonomy.categories), pretrained=True)


def _cross_entropy_step(cfg: RecipeConfig, fine_to_label: torch.Tensor):
    """Step of a classifier (teacher or router): smoothed cross-entropy on labels mapped from fine classes."""

    def step_fn(m: torch.nn.Module, batch: Any, step: int):
        x, fine = batch
        loss = F.cross_entropy(m(x.to(cfg.device)).float(), fine_to_label[fine].to(cfg.device),
                               label_smoothing=cfg.label_smoothing)  # fmt: skip
        return loss, {}

    return step_fn


def _classify_eval(x_val: torch.Tensor, y_val: torch.Tensor, device: str):
    def evaluate(model: torch.nn.Module, step: int) -> dict[str, float]:
        logits = torch.cat([model(x.to(device)).float().cpu() for x in x_val.split(256)])
        return {"val_acc": float((logits.argmax(1) == y_val).float().mean())}

    return evaluate


def _predict(model: torch.nn.Module, x_val: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x.to(device)).float().argmax(1).cpu() for x in x_val.split(256)]).numpy()


def train_teacher(
    cfg: RecipeConfig, name: str, out: Path, registry: ModelRegistry, version: str, command: str, resume: bool,
    init_version: str | None = None,
) -> Manifest:  # fmt: skip
    tax = cfg.taxonomy
    classes = tax.teacher_classes(name)
    label_map = torch.full((len(tax.class_names),), len(classes), dtype=torch.long)  # default: "other"
    label_map[list(classes)] = torch.arange(len(classes))
    source = ImageSource("train", cfg.preprocess)
    pool, val = data_split(cfg)
    own = np.isin(source.labels(pool), classes)
    weights = np.where(own, cfg.own_fraction / own.sum(), (1 - cfg.own_fraction) / max((~own).sum(), 1))
    spe = cfg.samples_per_epoch or int(own.sum() / cfg.own_fraction)
    steps = cfg.steps(spe)
    batches = MixedBatches(source, pool, cfg.batch_size, cfg.seed, cfg.plain_fraction, weights)
    x_val, fine_val = eval_images(source, val, VAL_RENDER_SEED)
    y_val = label_map[fine_val]

    model = new_teacher(cfg, classes).to(cfg.device)
    init_ref = f"teacher-{name}@{init_version}" if init_version else None
    if init_ref:
        model.load_state_dict(registry.load_state(init_ref), strict=True)
    opt, sched = adamw_onecycle(model.net.backbone, model.net.proj, cfg, steps)

    trainer = Trainer(model, opt, sched, _cross_entropy_step(cfg, label_map), batches,
                      train_config(cfg, steps, out, "val_acc", f"teacher-{name}", init_ref),
                      eval_fn=_classify_eval(x_val, y_val, cfg.device))  # fmt: skip
    result = trainer.fit(resume=resume)
    model.load_state_dict(trainer.final_state())
    labels = [tax.class_names[i] for i in classes] + ["other"]
    cm = confusion_matrix(y_val.numpy(), _predict(model, x_val, cfg.device), len(labels))
    report = save_report(out / "report.png", result.history, {f"teacher {name}, val": (cm, labels)}, f"teacher {name}")
    metrics = {"val_acc": result.best_value, "best_step": result.best_step, "steps": steps,
               "train_seconds": round(result.train_seconds, 1)}  # fmt: skip
    return registry.save(f"teacher-{name}", version, model.state_dict(), {
        "kind": "teacher", "architecture": EMBEDDING_ARCH,
        "config": {**cfg.to_dict(), "teacher": name, "classes": list(classes), "labels": labels},
        "extra": {"init_from": init_ref or "ImageNet Lite0"},
        "data": data_description(cfg, steps * cfg.batch_size), "metrics": metrics,
        "parents": [init_ref] if init_ref else [],
        "preprocess": cfg.preprocess, "command": command,
    }, overwrite=True, extra_files={"report.png": report})  # fmt: skip


def train_router(
    cfg: RecipeConfig, out: Path, registry: ModelRegistry, version: str, command: str, resume: bool
) -> Manifest:
    tax = cfg.taxonomy
    to_cat = torch.tensor(tax.fine_to_category_index())
    source = ImageSource("train", cfg.preprocess)
    pool, val = data_split(cfg)
    steps = cfg.steps(cfg.samples_per_epoch or len(pool))
    batches = MixedBatches(source, pool, cfg.batch_size, cfg.seed + 100, cfg.plain_fraction)
    x_val, fine_val = eval_images(source, val, VAL_RENDER_SEED)
    y_val = to_cat[fine_val]
    model = new_router(cfg).to(cfg.device)
    opt, sched = adamw_onecycle(model.backbone, model.head, cfg, steps)

    trainer = Trainer(model, opt, sched, _cross_entropy_step(cfg, to_cat), batches,
                      train_config(cfg, steps, out, "val_acc", "router", None),
                      eval_fn=_classify_eval(x_val, y_val, cfg.device))  # fmt: skip
    result = trainer.fit(resume=resume)
    model.load_state_dict(trainer.final_state())
    cm = confusion_matrix(y_val.numpy(), _predict(model, x_val, cfg.device), len(tax.categories))
    report = save_report(out / "report.png", result.history, {"router, val": (cm, list(tax.categories))}, "router")
    return registry.save("router", version, model.state_dict(), {
        "kind": "router", "architecture": ROUTER_ARCH,
        "config": {**cfg.to_dict(), "categories": list(tax.categories)},
        "data": data_description(cfg, steps * cfg.batch_size),
        "metrics": {"val_acc": result.best_value, "best_step": result.best_step, "steps": steps},
        "parents": [], "preprocess": cfg.preprocess, "command": command,
    }, overwrite=True, extra_files={"report.png": report})  # fmt: skip
