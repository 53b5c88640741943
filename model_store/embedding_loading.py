"""Rebuild registry versions of the distillation recipe (teachers, students, router) as modules.

Architectures (``manifest.architecture``):
- ``lite0-embedding``: an ``EmbeddingNet``; a teacher's state also holds its prototype head under
  ``head.*`` and the embedding net under ``net.*``; a student's state is the net alone.
- ``lite0-router``: a ``CategoryRouter`` over ``config["categories"]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from model_store.embedding_nets import (
    EMBED_DIM,
    CategoryRouter,
    EmbeddingNet,
    build_embedding_net,
    build_router,
)
from model_store.preprocess import PreprocessSpec
from model_store.registry import Manifest, ModelRegistry

EMBEDDING_ARCH = "lite0-embedding"
ROUTER_ARCH = "lite0-router"


class ArchitectureError(ValueError):
    """A manifest names an architecture this loader cannot build."""


def preprocess_of(manifest: Manifest) -> PreprocessSpec:
    if manifest.preprocess is None:
        raise ArchitectureError(f"{manifest.ref}: manifest has no preprocess spec")
    return PreprocessSpec.from_dict(manifest.preprocess)


def embedding_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The EmbeddingNet part of a teacher or student state dict."""
    if any(k.startswith("net.") for k in state):
        return {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
    return state


def teacher_parents(manifest: Manifest) -> list[str]:
    """The teachers a student was distilled from; a warm-start parent (an earlier student) is not one."""
    return [ref for ref in manifest.parents if ref.startswith("teacher-")]


def teacher_name(ref: str) -> str:
    """``teacher-clothing@2`` -> ``clothing``, the taxonomy's name for that teacher."""
    return ref.split("@")[0].removeprefix("teacher-")


def load_embedding_net(registry: ModelRegistry, ref: str) -> tuple[EmbeddingNet, Manifest]:
    """A teacher's or student's embedding net, checksum-verified, in eval mode, channels_last."""
    manifest = registry.load_manifest(ref)
    if manifest.architecture != EMBEDDING_ARCH:
        raise ArchitectureError(f"{manifest.ref} is a {manifest.architecture!r}, not a {EMBEDDING_ARCH!r}")
    spec = preprocess_of(manifest)
    work_size, hidden = manifest.config.get("work_size"), manifest.config.get("head_hidden")
    net = build_embedding_net(spec.image_size, int(manifest.config.get("embed_dim", EMBED_DIM)), pretrained=False,
                              work_size=None if work_size is None else int(work_size),
                              head_hidden=None if hidden is None else int(hidden))  # fmt: skip
    net.load_state_dict(embedding_state(registry.load_state(manifest.ref)), strict=True)
    return net.eval(), manifest


def load_teacher_nets(registry: ModelRegistry, refs: Iterable[str]) -> dict[str, EmbeddingNet]:
    """Each teacher's embedding net under its taxonomy name, as ``TeacherSet`` takes them."""
    return {teacher_name(ref): load_embedding_net(registry, ref)[0] for ref in refs}


def load_router(registry: ModelRegistry, ref: str) -> tuple[CategoryRouter, Manifest]:
    manifest = registry.load_manifest(ref)
    if manifest.architecture != ROUTER_ARCH:
        raise ArchitectureError(f"{manifest.ref} is a {manifest.architecture!r}, not a {ROUTER_ARCH!r}")
    spec = preprocess_of(manifest)
    router = build_router(spec.image_size, len(manifest.config["categories"]), pretrained=False)
    router.load_state_dict(registry.load_state(manifest.ref), strict=True)
    return router.eval(), manifest
