"""The embedder role: a batch of decoded images in, L2-normalised float32 vectors out.

Any model (the ImageNet baseline today, the unified student tomorrow) plugs in
behind ``Embedder``; callers never see torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from model_store.devices import CPU_FORWARD_BATCH, batch_slices, to_device
from model_store.embedding_models import SHIPPED_STUDENT_REF, EmbeddingModel, load_embedding_model
from model_store.graphs import frozen_graph, random_batch
from model_store.registry import ModelRegistry


class Embedder(Protocol):
    model_id: str
    model_version: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Return an [N, dim] float32 array of unit vectors."""
        ...


@dataclass(frozen=True)
class EmbedderConfig:
    model_ref: str = SHIPPED_STUDENT_REF
    image_size: int = 64
    device: str = "cpu"
    max_forward_batch: int | None = CPU_FORWARD_BATCH  # images per forward pass; None: the whole batch at once
    torch_threads: int | None = None
    registry_dir: Path | None = None  # None: the shipped registry (model_store/artifacts)
    graph: bool = False  # on a CPU, serve a traced, frozen graph (model_store.graphs)


class TorchEmbedder:
    """Runs a model-store network in inference mode; blocking, so call it off the event loop."""

    def __init__(
        self,
        model: EmbeddingModel,
        device: str = "cpu",
        max_forward_batch: int | None = CPU_FORWARD_BATCH,
        graph: bool = False,
    ) -> None:
        self._model = model
        self._device = torch.device(device)
        self._module = model.module.to(self._device).eval()
        if graph and self._device.type == "cpu":
            example = partial(random_batch, model.preprocess)
            self._module = frozen_graph(self._module, example, name=f"{model.model_id}@{model.version}")
        self._max_batch = max_forward_batch
        self.model_id = model.model_id
        self.model_version = model.version
        self.dim = model.dim

    @classmethod
    def from_config(cls, config: EmbedderConfig) -> TorchEmbedder:
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        registry = ModelRegistry(config.registry_dir) if config.registry_dir is not None else None
        model = load_embedding_model(config.model_ref, image_size=config.image_size, registry=registry)
        return cls(model, device=config.device, max_forward_batch=config.max_forward_batch, graph=config.graph)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_uint8(self.to_uint8(images))

    def to_uint8(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Decoded images resized to the model input, as the manifest says."""
        if not images:
            return np.zeros((0, self.image_size, self.image_size, 3), dtype=np.uint8)
        return self._model.preprocess.images_to_uint8(images)

    def embed_uint8(self, batch: np.ndarray) -> np.ndarray:
        """Embed pre-resized uint8 [N, H, W, 3] pixels (bulk gallery loads skip PIL)."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for part in batch_slices(len(batch), self._max_batch):
            x = to_device(self._model.preprocess.normalise_uint8(batch[part]), self._device)
            with (
                torch.inference_mode(),
                torch.autocast(self._device.type, torch.bfloat16, enabled=self._device.type == "cuda"),
            ):
                features = self._module(x).float()
            chunks.append(torch.nn.functional.normalize(features, dim=1).cpu().numpy())
        return np.concatenate(chunks).astype(np.float32, copy=False)

    @property
    def image_size(self) -> int:
        return self._model.preprocess.image_size
