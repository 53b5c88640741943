"""Make one fused candidate: resolve a teacher subset against a registry, distil it, register it.

Teachers are the latest registered version of ``teacher-<name>`` for each teacher of the subset;
the warm start is a registered student (``student@17`` by default); the candidate's version is the
next free integer of its name unless one is given, and an existing version is never replaced.
The distillation itself is ``model_store.distill.train_student.distil`` (L2 + gamma * CORAL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model_store.distill.config import RecipeConfig
from model_store.distill.taxonomy import Taxonomy
from model_store.embedding_loading import EMBEDDING_ARCH, teacher_name
from model_store.fusion.schedule import Schedule, recipe_config
from model_store.fusion.subsets import FusionError, FusionPlan
from model_store.registry import Manifest, ModelRegistry, RegistryError, parse_ref

TEACHER_PREFIX = "teacher-"


@dataclass(frozen=True)
class FusionRequest:
    """Everything one candidate is made from, resolved and checked before any training starts."""

    plan: FusionPlan
    name: str
    version: str
    teachers: tuple[str, ...]  # registry refs, taxonomy order
    init_ref: str | None
    schedule: Schedule
    config: RecipeConfig  # the recipe with this schedule, device and threads

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def parents(self) -> list[str]:
        return [*self.teachers, *([self.init_ref] if self.init_ref else [])]


def registered_teachers(registry: ModelRegistry, taxonomy: Taxonomy) -> dict[str, str]:
    """Taxonomy teacher name -> ref of its latest registered version, for those that have one."""
    out = {}
    for name in taxonomy.teachers:
        versions = registry.versions(TEACHER_PREFIX + name)
        if versions:
            out[name] = f"{TEACHER_PREFIX}{name}@{versions[-1]}"
    return out


def teacher_refs(registry: ModelRegistry, taxonomy: Taxonomy, plan: FusionPlan) -> tuple[str, ...]:
    registered = registered_teachers(registry, taxonomy)
    missing = [t for t in plan.teachers if t not in registered]
    if missing:
        raise FusionError(
            f"teacher {', '.join(missing)} has no registered version "
            f"({', '.join(TEACHER_PREFIX + t for t in missing)}) in {registry.root}; "
            f"registered teachers: {', '.join(registered) or 'none'}"
        )
    return tuple(registered[t] for t in plan.teachers)


def registered_students(registry: ModelRegistry) -> list[str]:
    return [m.ref for m in registry.list() if m.kind == "student" and m.architecture == EMBEDDING_ARCH]


def resolve_init(registry: ModelRegistry, ref: str | None) -> Manifest | None:
    """The warm start's manifest (a bare name means its latest version); None: start from ImageNet Lite0."""
    if ref is None:
        return None
    try:
        parse_ref(ref)
        manifest = registry.load_manifest(ref) if registry.exists(ref) else None
    except (RegistryError, ValueError):
        manifest = None
    if manifest is None or manifest.kind != "student" or manifest.architecture != EMBEDDING_ARCH:
        known = ", ".join(registered_students(registry)) or "none"
        raise FusionError(f"unknown init model {ref!r} in {registry.root}; registered students: {known}")
    return manifest


def next_version(registry: ModelRegistry, name: str) -> str:
    numbers = [int(v) for v in registry.versions(name) if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def prepare(
    registry: ModelRegistry, taxonomy: Taxonomy, plan: FusionPlan, schedule: Schedule, init: str | None,
    name: str | None = None, version: str | None = None, device: str = "cpu", threads: int = 2,
    recipe_fields: Mapping[str, Any] | None = None,
) -> FusionRequest:  # fmt: skip
    """Resolve names, versions, teachers, the warm start and the recipe; every refusal is a ``FusionError``."""
    name = name or plan.default_name
    version = version or next_version(registry, name)
    try:
        parse_ref(f"{name}@{version}")
    except ValueError as exc:
        raise FusionError(f"bad candidate name or version: {exc}") from None
    if registry.exists(f"{name}@{version}"):
        raise FusionError(
            f"{name}@{version} is already registered in {registry.root}; versions are immutable, "
            "so pass another --version or leave it out (the next free one is used)"
        )
    init_manifest = resolve_init(registry, init)
    check_device(device)
    try:
        cfg = recipe_config(schedule, taxonomy, init_manifest.config if init_manifest else None, device, threads,
                            recipe_fields)  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise FusionError(f"bad recipe: {exc}") from None
    return FusionRequest(plan, name, version, teacher_refs(registry, taxonomy, plan),
                         init_manifest.ref if init_manifest else None, schedule, cfg)  # fmt: skip


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FusionError(f"device {device!r} is not available here; --device cpu runs on the CPU (full recipe: hours)")


def fuse(
    request: FusionRequest, registry: ModelRegistry, out: Path, *, command: str, full_recipe_command: str,
    resume: bool = False,
) -> Manifest:  # fmt: skip
    """Distil the request's teachers on its categories' items and register the candidate."""
    from model_store.distill.train_student import EmptySplitError, StudentRun, distil  # loads only to train

    cfg, plan, taxonomy = request.config, request.plan, request.config.taxonomy
    torch.set_num_threads(cfg.threads)
    run = StudentRun(
        teachers=request.teachers,
        init_ref=request.init_ref,
        classes=plan.classes,
        freeze_norm_stats=request.schedule.keeps_norm_stats(request.init_ref),
        data={
            "categories": list(plan.categories),
            "classes": list(plan.class_names),
            "items": "only items of these fine classes, in training and in validation",
        },
        extra={
            "fusion": {
                "teachers": list(request.teachers),
                "teacher_names": [teacher_name(r) for r in request.teachers],
                "categories": list(plan.categories),
                "category_teachers": {c: list(plan.teachers_of(taxonomy, c)) for c in plan.categories},
                "init": request.init_ref,
                "schedule": request.schedule.describe(request.init_ref),
                "batchnorm": "the warm start's statistics, kept"
                if request.schedule.keeps_norm_stats(request.init_ref)
                else "statistics estimated in training",
                "full_recipe_command": full_recipe_command,
            }
        },
    )
    try:
        return distil(cfg, request.name, out, registry, request.version, command, resume, run)
    except EmptySplitError as exc:
        raise FusionError(f"{request.ref}: {exc}") from None
