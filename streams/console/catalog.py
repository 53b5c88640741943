"""The Models page's view: every embedding model, its lineage, status, size and headline figures.

Status comes from the serving record, not from the registry: ``active`` is the latest activation on
the models topic (``CATALOG_MODEL_REF`` while there is none), ``retired`` is a model that was active
before (the activation log and the latest activation's ``previous_ref``), every other embedding
model is a ``candidate``. Headline figures come from the stored ``evaluation.json`` only; a model
without one says how to make it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from model_store.activation_log import read_activations
from model_store.embedding_models import BASELINE_REF
from model_store.evaluations import read_evaluation
from model_store.registry import WEIGHTS_FILE, Manifest, ModelRegistry
from streams.activation import ActivationRecord, activation_log_path
from streams.settings import Settings


@dataclass(frozen=True)
class ServingState:
    """Which model is in force, and how the console knows."""

    active_ref: str
    source: str  # "topic" | "settings"
    record: ActivationRecord | None
    retired: frozenset[str]
    kafka_error: str | None = None

    def status(self, ref: str) -> str:
        if ref == self.active_ref:
            return "active"
        return "retired" if ref in self.retired else "candidate"


def serving_state(settings: Settings, record: ActivationRecord | None, kafka_error: str | None) -> ServingState:
    active = record.event.model_ref if record else settings.model_ref
    earlier = {ref for e in read_activations(activation_log_path(settings)) for ref in (e.model_ref, e.previous_ref)}
    if record and record.event.previous_ref:
        earlier.add(record.event.previous_ref)
    earlier.discard(None)
    earlier.discard(active)
    return ServingState(active, "topic" if record else "settings", record, frozenset(earlier), kafka_error)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Lineage:
    teachers: list[str]  # the category teachers distilled into it
    init: str | None  # the checkpoint it started from (a student ref, or e.g. "ImageNet Lite0")
    categories: list[str]


def lineage(manifest: Manifest) -> Lineage:
    """Teachers and start point of a student; a teacher has no teachers, only an earlier checkpoint."""
    fusion = manifest.extra.get("fusion") or {}
    if manifest.kind == "teacher":
        teacher_of = manifest.config.get("teacher")
        init = manifest.extra.get("init_from") or (manifest.parents[0] if manifest.parents else None)
        return Lineage([], init, [teacher_of] if teacher_of else [])
    teachers = list(fusion.get("teachers") or [p for p in manifest.parents if p.startswith("teacher-")])
    others = [p for p in manifest.parents if p not in teachers]
    init = fusion.get("init") or (others[0] if others else None) or manifest.extra.get("init_from")
    categories = fusion.get("categories") or manifest.data.get("categories")
    if not categories:
        categories = (manifest.config.get("taxonomy") or {}).get("category_order") or []
    return Lineage(teachers, init, list(categories))


@dataclass(frozen=True)
class Headline:
    plain_fine: float
    seller_fine: float
    seller_coarse: float
    protocol: str  # "10,000 gallery / 2,000 queries, k=20"
    vs_active: dict[str, Any] | None  # {"ref":..., "seller": [diff, low, high], ...} as stored


@dataclass(frozen=True)
class ModelRow:
    ref: str
    kind: str
    status: str
    lineage: Lineage | None
    weights_bytes: int | None
    params: int | None
    headline: Headline | None
    evaluate_command: str
    builtin: bool = False


def evaluate_command(settings: Settings, ref: str) -> str:
    words = ["catalog", "models", "evaluate", ref]
    if settings.registry_dir is not None:
        words += ["--registry", str(settings.registry_dir)]
    return shlex.join(words)


def headline(evaluation: dict[str, Any] | None) -> Headline | None:
    if not evaluation:
        return None
    styles, p = evaluation.get("styles", {}), evaluation.get("protocol", {})
    try:
        return Headline(
            plain_fine=styles["plain"]["fine_acc"],
            seller_fine=styles["seller"]["fine_acc"],
            seller_coarse=styles["seller"]["coarse_acc"],
            protocol=f"{p.get('gallery_size', 0):,} gallery / {p.get('queries', 0):,} queries, k={p.get('k')}",
            vs_active=evaluation.get("vs_active"),
        )
    except (KeyError, TypeError):
        return None


def model_rows(settings: Settings, registry: ModelRegistry, state: ServingState) -> list[ModelRow]:
    """The built-in baseline first, then every registry embedding model; the active one on top."""
    from model_store.embedding_loading import EMBEDDING_ARCH

    baseline_status = state.status(BASELINE_REF)
    baseline_status = "baseline" if baseline_status == "candidate" else baseline_status  # it cannot be activated
    rows = [ModelRow(BASELINE_REF, "built in", baseline_status, None, None, None, None, "", builtin=True)]
    for m in registry.list():
        if m.architecture != EMBEDDING_ARCH:
            continue
        evaluation = read_evaluation(registry.root, m.name, m.version)
        weights = registry.version_dir(m.ref) / WEIGHTS_FILE
        rows.append(
            ModelRow(
                ref=m.ref,
                kind=m.kind or "model",
                status=state.status(m.ref),
                lineage=lineage(m),
                weights_bytes=weights.stat().st_size if weights.is_file() else None,
                params=(evaluation or {}).get("params"),
                headline=headline(evaluation),
                evaluate_command=evaluate_command(settings, m.ref),
            )
        )
    order = {"active": 0, "candidate": 1, "retired": 2, "baseline": 3}
    return sorted(rows, key=lambda r: (order[r.status], r.builtin, r.kind != "student", r.ref))
