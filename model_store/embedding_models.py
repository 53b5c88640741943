"""Resolve an embedding model reference (``name@version``) to a loaded, ready module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from model_store.backbones import LITE0_FEATURE_DIM, build_lite0, imagenet_lite0_weights_path
from model_store.preprocess import PreprocessSpec


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
    return EmbeddingModel(
        "lite0-imagenet", "1", module, PreprocessSpec(image_size, "minus_one_one"), LITE0_FEATURE_DIM
    )


_BUILTIN: dict[str, Callable[[int], EmbeddingModel]] = {"lite0-imagenet@1": _lite0_imagenet}


def available_models() -> list[str]:
    return sorted(_BUILTIN)


def load_embedding_model(ref: str, image_size: int = 64) -> EmbeddingModel:
    """Load ``ref``; an unknown reference fails with the list of known ones."""
    factory = _BUILTIN.get(ref)
    if factory is None:
        raise UnknownModelError(f"unknown embedding model {ref!r}; known: {', '.join(available_models())}")
    model = factory(image_size)
    model.module.to(memory_format=torch.channels_last)
    return model
