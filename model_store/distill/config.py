"""Typed configuration of the distillation recipe, shared by teachers, router and student runs."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_store.datasets.fashion_mnist import train_val_split
from model_store.distill.taxonomy import Taxonomy
from model_store.preprocess import PreprocessSpec
from model_store.training import TrainConfig

N_TRAIN = 60_000
VAL_SPLIT_SEED = 0  # fixed: every model of the recipe holds out the same validation items
# fixed too: the seller renderings of those items, so runs under other seeds select and report on
# the same images (the validation L2 of one student moves by 0.0165-0.0209 between render draws)
VAL_RENDER_SEED = 1


# where and how fast a run goes, not what it learns: a run may resume on other hardware
RUN_ONLY_FIELDS = ("device", "threads", "loader_workers", "checkpoint_every")


@dataclass(frozen=True)
class RecipeConfig:
    image_size: int = 64
    work_size: int | None = None  # student: resolution its trunk runs at (input stays image_size); None: same
    embed_dim: int = 256
    head_hidden: int | None = None  # student: width of the residual MLP beside its linear projection; None: none
    batch_size: int = 64
    seed: int = 0
    val_fraction: float = 0.1
    val_items: int = 600  # validation items, each shown plain and as a seller photo
    plain_fraction: float = 0.5  # share of plain catalog items in training batches (rest: seller photos)
    class_weights: tuple[float, ...] | None = None  # student: sampling weight per fine class (None: uniform)
    epochs: float = 1.0
    samples_per_epoch: int | None = None  # None: teachers their own items / own_fraction, else 54,000
    lr: float = 1e-3  # backbone peak lr (OneCycle, cosine)
    head_lr: float = 3e-3  # projection / classifier heads
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    own_fraction: float = 0.75  # teachers: share of own-category items; the rest is the "other" class
    drop_connect: float = 0.1  # teachers and router; the student uses 0 (distillation targets are soft)
    mixup_alpha: float = 0.0  # student: within-category input mixup, lambda ~ Beta(a, a) folded to >= 0.5; 0: off
    affine_jitter: float = 0.0  # student: random shift/zoom/turn of inputs up to this (side fraction, radians); 0: off
    mirror_targets: bool = False  # student: vec_source = mean of the teacher's image and mirror-image vectors
    gamma: float = 1.0  # L = L2 + gamma * L_coral
    coral_layers: tuple[int, ...] = (10, 14)
    coral_dim: int = 100
    eval_every: int = 250
    checkpoint_every: int = 100
    device: str = "cpu"
    threads: int = 2
    loader_workers: int = 0  # worker processes building batches (0: one prefetch thread); data do not change
    taxonomy: Taxonomy = field(default_factory=Taxonomy)

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec(self.image_size, "minus_one_one")

    def steps(self, samples_per_epoch: int) -> int:
        return max(1, math.ceil(self.epochs * samples_per_epoch / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["taxonomy"] = self.taxonomy.to_dict()
        out["coral_layers"] = list(self.coral_layers)
        out["class_weights"] = None if self.class_weights is None else list(self.class_weights)
        return out

    def recipe_identity(self) -> dict[str, Any]:
        """What must match for a checkpoint to continue this run: the recipe without ``RUN_ONLY_FIELDS``."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_ONLY_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecipeConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown recipe config keys {sorted(unknown)}")
        values = dict(data)
        if "taxonomy" in values:
            values["taxonomy"] = Taxonomy.from_dict(values["taxonomy"])
        if "coral_layers" in values:
            values["coral_layers"] = tuple(int(i) for i in values["coral_layers"])
        if values.get("class_weights") is not None:
            values["class_weights"] = tuple(float(w) for w in values["class_weights"])
        return cls(**values)

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> RecipeConfig:
        base = {} if path is None else json.loads(Path(path).read_text())
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(base)


def item_weights(cfg: RecipeConfig, labels: np.ndarray) -> np.ndarray | None:
    """Sampling weight of each item from its fine class (``class_weights``), or None for uniform."""
    if cfg.class_weights is None:
        return None
    weights = np.asarray(cfg.class_weights, dtype=np.float64)
    if len(weights) != len(cfg.taxonomy.class_names) or (weights <= 0).any():
        raise ValueError(f"class_weights needs one positive weight per fine class, got {list(weights)}")
    return weights[labels]


def data_split(cfg: RecipeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training pool, validation items) of the Fashion-MNIST train split."""
    pool, val = held_out_split(cfg)
    return pool, val[: cfg.val_items]


def held_out_split(cfg: RecipeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training pool, ALL held-out items): no model of the recipe ever trains on the latter."""
    return train_val_split(N_TRAIN, cfg.val_fraction, VAL_SPLIT_SEED)


def train_config(
    cfg: RecipeConfig,
    steps: int,
    out: Path,
    select: str,
    model: str,
    init: str | None,
    teachers: list[str] | None = None,
) -> TrainConfig:
    """The loop's settings for one run of the recipe; ``run_identity`` keeps resume on the same run."""
    identity: dict[str, Any] = {"model": model, "init": init, "recipe": cfg.recipe_identity()}
    if teachers is not None:
        identity["teachers"] = teachers
    return TrainConfig(
        total_steps=steps, seed=cfg.seed, device=cfg.device, eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every, checkpoint_dir=out / "checkpoints", select_metric=select,
        loader_workers=cfg.loader_workers, run_identity=identity,
    )  # fmt: skip


def adamw_onecycle(
    backbone: torch.nn.Module, heads: torch.nn.Module, cfg: RecipeConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with a larger lr for the heads, OneCycle (10 % warm-up, cosine) over the run."""
    groups = [
        {"params": [p for p in backbone.parameters() if p.requires_grad], "lr": cfg.lr},
        {"params": [p for p in heads.parameters() if p.requires_grad], "lr": cfg.head_lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, cfg.head_lr], total_steps=total_steps, pct_start=0.1,
        div_factor=10.0, final_div_factor=100.0,
    )  # fmt: skip
    return opt, sched


def data_description(cfg: RecipeConfig, samples: int) -> dict[str, Any]:
    return {
        "dataset": "Fashion-MNIST train split (Debian package dataset-fashion-mnist)",
        "val_fraction": cfg.val_fraction,
        "val_split_seed": VAL_SPLIT_SEED,
        "val_render_seed": VAL_RENDER_SEED,
        "plain_fraction": cfg.plain_fraction,
        "seller_photos": "model_store.datasets seller-photo generator, default SellerPhotoConfig, train backgrounds",
        "samples_seen": samples,
    }
