"""How long a fused candidate trains: a short warm start for a CPU, or the full recipe for a GPU.

The loss, data and selection are the distillation recipe's own (``RecipeConfig`` defaults, as
``student@17`` was made); only the schedule differs:

- short (default): ``steps`` steps of batch ``batch_size`` warm-started from a registered student
  (``student@17``), OneCycle at a hundredth of the full recipe's peak lr, with the start's
  BatchNorm statistics kept: the start already fits the teachers and only moves towards the
  subset's. Measured on shoes + bags (100 validation items, 20 steps of batch 32): val L2 0.00658
  -> 0.00618 at lr 3e-5; at 3e-4 it rose to 0.00874 in 10 steps, and re-estimating the BatchNorm
  statistics from the subset's small batches raised it by half in 15 steps even at 3e-5.
  A couple of minutes of steps on an idle 2-core CPU.
- full: ``student@17``'s own schedule (``FULL_RECIPE``: 20 epochs at batch 256, peak lr 3e-3, heads
  9e-3, from ImageNet Lite0 unless an init is given) over the subset's items, on a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model_store.distill.config import RecipeConfig
from model_store.distill.taxonomy import Taxonomy

# student@17's command (its manifest): what "the full recipe" means; a unit test holds them equal
FULL_RECIPE: dict[str, Any] = {"epochs": 20.0, "batch_size": 256, "lr": 3e-3, "head_lr": 9e-3}
FULL_RUN: dict[str, Any] = {"checkpoint_every": 1000, "loader_workers": 6}  # where it runs, not what it learns
SHORT_STEPS = 150
SHORT_BATCH = 32
SHORT_LR_SCALE = 0.01  # of the full recipe's peak lrs
SHORT_EVALS = 6  # evaluations along a short run (the curves a console draws), the last one at the end
SCHEDULE_FIELDS = ("epochs", "samples_per_epoch", "batch_size", "lr", "head_lr", "eval_every", "checkpoint_every",
                   "loader_workers")  # fmt: skip
# the fields that make a network's shape: a warm start takes them from its init's manifest
ARCHITECTURE_FIELDS = ("image_size", "work_size", "embed_dim", "head_hidden")


@dataclass(frozen=True)
class Schedule:
    full: bool = False
    steps: int = SHORT_STEPS  # short schedule only
    batch_size: int = SHORT_BATCH  # short schedule only

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch size must be positive, got {self.steps} and {self.batch_size}")

    def keeps_norm_stats(self, init_ref: str | None) -> bool:
        """A short warm start keeps its start's BatchNorm statistics (a few hundred small batches would move them)."""
        return not self.full and init_ref is not None

    def describe(self, init_ref: str | None) -> str:
        """The manifest's ``extra.fusion.schedule``."""
        if self.full:
            return "full recipe"
        start = f"short warm start from {init_ref}" if init_ref else "short run from ImageNet Lite0"
        return f"{start}: {self.steps} steps of batch {self.batch_size}"


def recipe_config(
    schedule: Schedule, taxonomy: Taxonomy, init_config: Mapping[str, Any] | None, device: str, threads: int,
    fields: Mapping[str, Any] | None = None,
) -> RecipeConfig:  # fmt: skip
    """The recipe with this schedule; ``init_config`` (the warm start's manifest config) fixes the shape.

    ``fields``: other RecipeConfig fields (gamma, coral_layers, val_items, ...); the schedule's own
    fields, the taxonomy and where it runs have their own arguments, and a warm start fixes the shape.
    """
    fields = dict(fields or {})
    owned = sorted(set(fields) & {*SCHEDULE_FIELDS, "taxonomy", "device", "threads"})
    if owned:
        raise ValueError(f"recipe fields {owned} are set by the fusion schedule, --taxonomy or --device, not a config")
    shape = {k: init_config[k] for k in ARCHITECTURE_FIELDS if init_config and k in init_config}
    clash = sorted(k for k in set(fields) & set(shape) if fields[k] != shape[k])
    if clash:
        raise ValueError(f"recipe fields {clash} differ from the warm start's; its network fixes them")
    base = {**fields, **shape, "taxonomy": taxonomy.to_dict(), "device": device, "threads": threads}
    if schedule.full:
        return RecipeConfig.from_dict({**base, **FULL_RECIPE, **FULL_RUN})
    every = max(1, schedule.steps // SHORT_EVALS)
    return RecipeConfig.from_dict({
        **base, "epochs": 1.0, "samples_per_epoch": schedule.steps * schedule.batch_size,
        "batch_size": schedule.batch_size, "lr": FULL_RECIPE["lr"] * SHORT_LR_SCALE,
        "head_lr": FULL_RECIPE["head_lr"] * SHORT_LR_SCALE, "eval_every": every, "checkpoint_every": every,
    })  # fmt: skip
