"""Training task of the visual-experience model, with or without the twin of claims 2 to 4.

Targets per image: ``(aesthetic, 1 - distortion)``. The main model sees the images as sampled
(about 60 % degraded, the rest clean, so it learns the whole range of the noise sub-score).

- ``twin=False``: mean squared error of the main model on its images.
- ``twin=True`` (``TwinPair``): the twin, same structure with its own weights, sees the clean render
  of each scene with its labels ``(aesthetic, 1)``; the main model sees the sampled image with its
  labels. Loss = MSE(main) + MSE(twin) + ``gate_weight`` * ``twin_loss`` (no loss where the twin's
  visual score >= the main model's, otherwise the sum of both regression losses) +
  ``consistency_weight`` * mean (aesthetic_main - aesthetic_twin)^2, the twin detached: the
  "difference between the outputs" of claim 2, on the sub-score that noise must not change.
  Only the main model ships.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model_store.preprocess import PreprocessSpec
from model_store.quality.batches import Batch, eval_batches
from model_store.quality.data import QualityData
from model_store.quality.metrics import spearman
from model_store.quality.twin_loss import twin_loss
from model_store.quality.visual_model import VisualNet


class TwinPair(nn.Module):
    """The main model and its twin; calling it runs the main model only."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.main, self.twin = VisualNet(**config), VisualNet(**config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def targets(labels: dict[str, torch.Tensor], clean: bool = False) -> torch.Tensor:
    noise = torch.ones_like(labels["distortion"]) if clean else 1.0 - labels["distortion"]
    return torch.stack([labels["aesthetic"], noise], dim=1)


class VisualTask:
    kind = "quality-visual"
    architecture = "seed004-visual-conv-flatten"
    select_metric = "selection"
    generator = "default"  # train/val generator settings, a key of quality.data.GENERATORS

    def __init__(
        self, twin: bool = True, width: int = 16, image_size: int = 64, gate_weight: float = 1.0,
        consistency_weight: float = 1.0, score_weights: tuple[float, float] = (0.5, 0.5),
    ) -> None:  # fmt: skip
        self.twin, self.with_clean = twin, twin
        self.model_config: dict[str, Any] = {"width": width, "image_size": image_size}
        self.train_config = {
            "twin": twin, "gate_weight": gate_weight, "consistency_weight": consistency_weight,
            "score_weights": list(score_weights),
        }  # fmt: skip
        self.gate_weight, self.consistency_weight, self.score_weights = (
            gate_weight,
            consistency_weight,
            score_weights,
        )

    def build(self) -> nn.Module:
        return TwinPair(self.model_config) if self.twin else VisualNet(**self.model_config)

    def serving_module(self, model: nn.Module) -> nn.Module:
        return model.main if isinstance(model, TwinPair) else model

    def step(self, model: nn.Module, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        main = self.serving_module(model)
        y_main = targets(batch.labels)
        pred_main = main(batch.images)
        loss_main = F.mse_loss(pred_main, y_main)
        if not isinstance(model, TwinPair):
            return loss_main, {"mse": float(loss_main)}
        assert batch.clean is not None
        y_twin = targets(batch.labels, clean=True)
        pred_twin = model.twin(batch.clean)
        loss_twin = F.mse_loss(pred_twin, y_twin)
        gated = twin_loss(pred_twin, pred_main, y_twin, y_main, self.score_weights)
        consistency = F.mse_loss(pred_main[:, 0], pred_twin[:, 0].detach())
        loss = loss_main + loss_twin + self.gate_weight * gated + self.consistency_weight * consistency
        return loss, {"mse": float(loss_main), "twin_mse": float(loss_twin), "gated": float(gated),
                      "consistency": float(consistency)}  # fmt: skip

    @staticmethod
    def predict(model: nn.Module, data: QualityData, preprocess: PreprocessSpec, clean: bool = False) -> np.ndarray:
        """[N, 2] (aesthetic, noise) of the served model on ``data.images`` (or ``data.clean``)."""
        net = model.main if isinstance(model, TwinPair) else model
        source = QualityData(data.clean, data.clean, data.labels) if clean else data
        with torch.inference_mode():
            return torch.cat([net(b.images) for b in eval_batches(source, preprocess)]).numpy()

    def evaluate(self, model: nn.Module, data: QualityData, preprocess: PreprocessSpec) -> dict[str, Any]:
        noisy = self.predict(model, data, preprocess)
        clean = self.predict(model, data, preprocess, clean=True)
        degraded = data.labels["distortion"] > 0
        metrics = {
            "noise_spearman_distortion": -spearman(noisy[:, 1], data.labels["distortion"]),
            "aesthetic_spearman": spearman(noisy[:, 0], data.labels["aesthetic"]),
            "aesthetic_mae": float(np.abs(noisy[:, 0] - data.labels["aesthetic"]).mean()),
            "aesthetic_change_under_noise": float(np.abs(noisy[degraded, 0] - clean[degraded, 0]).mean()),
        }
        metrics["selection"] = metrics["noise_spearman_distortion"] + metrics["aesthetic_spearman"]
        return metrics
