"""Resolve an embedding model reference (``name@version``) to a loaded, ready module.

Builtins (``lite0-imagenet@1``) are built in code; every other reference is a registry version
(``student@17``, ``teacher-clothing@2``, ...) loaded checksum-verified from ``model_store/artifacts``
with the preprocess spec of its manifest. A loaded module maps a normalised batch to its final
embedding ``[N, D]`` (for the student: the projection output); callers L2-normalise it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from model_store.backbones import LITE0_FEATURE_DIM, build_lite0, imagenet_lite0_weights_path
from model_store.preprocess import PreprocessSpec
from model_store.registry import ModelRegistry

BASELINE_REF = "lite0-imagenet@1"
SHIPPED_STUDENT_REF = "student@17"  # the served unified student; every default names it through this


@dataclass(frozen=True)
class EmbeddingModel:
    """A frozen network plus the contract for feeding it."""

    model_id: str
    version: str
    module: nn.Module
    preprocess: PreprocessSpec
    dim: int

    @property
    def ref(self) -> str:
        return f"{self.model_id}@{self.version}"


class UnknownModelError(LookupError):
    """The reference names no registered model or version."""


def _lite0_imagenet(image_size: int) -> EmbeddingModel:
    imagenet_lite0_weights_path()  # fail early with a clear message when the package is missing
    module = build_lite0(image_size, pretrained=True).eval()
    return EmbeddingModel("lite0-imagenet", "1", module, PreprocessSpec(image_size, "minus_one_one"), LITE0_FEATURE_DIM)


_BUILTIN: dict[str, Callable[[int], EmbeddingModel]] = {"lite0-imagenet@1": _lite0_imagenet}


def _registry_embedding_refs(registry: ModelRegistry) -> list[str]:
    from model_store.embedding_loading import EMBEDDING_ARCH

    return [m.ref for m in registry.list() if m.architecture == EMBEDDING_ARCH]


def available_models(registry: ModelRegistry | None = None) -> list[str]:
    """Builtin references plus every embedding version in the registry."""
    return sorted(_BUILTIN) + _registry_embedding_refs(registry or ModelRegistry())


def load_embedding_model(ref: str, image_size: int = 64, registry: ModelRegistry | None = None) -> EmbeddingModel:
    """Load ``ref``; an unknown reference fails with the list of known ones.

    ``image_size`` applies to builtins only: a registry version is fed as its manifest says.
    A registry artifact whose file is missing or whose checksum differs raises the registry's
    ``ArtifactMissingError`` / ``ChecksumMismatchError``.
    """
    factory = _BUILTIN.get(ref)
    if factory is not None:
        model = factory(image_size)
    else:
        registry = registry or ModelRegistry()
        if not registry.exists(ref):
            known = ", ".join(available_models(registry))
            raise UnknownModelError(f"unknown embedding model {ref!r} (registry {registry.root}); known: {known}")
        model = _from_registry(registry, ref)
    model.module.to(memory_format=torch.channels_last)
    return model


def _from_registry(registry: ModelRegistry, ref: str) -> EmbeddingModel:
    from model_store.embedding_loading import ArchitectureError, load_embedding_net, preprocess_of

    try:
        net, manifest = load_embedding_net(registry, ref)
    except ArchitectureError as exc:
        raise UnknownModelError(f"{ref!r} is not an embedding model: {exc}") from exc
    return EmbeddingModel(manifest.name, manifest.version, net.eval(), preprocess_of(manifest), net.dim)
