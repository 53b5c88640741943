"""Training task of the position detector (loss in ``position_loss``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from model_store.preprocess import PreprocessSpec
from model_store.quality.batches import Batch, eval_batches
from model_store.quality.data import QualityData
from model_store.quality.metrics import accuracy, box_iou_np, spearman
from model_store.quality.position_loss import position_loss
from model_store.quality.position_model import PositionNet, decode
from model_store.quality.scoring import PositionScoreConfig, position_score


class PositionTask:
    kind = "quality-position"
    architecture = "seed004-position-csp-detector"
    select_metric = "selection"
    with_clean = False
    generator = "default"  # train/val generator settings, a key of quality.data.GENERATORS

    def __init__(self, width: int = 16, image_size: int = 64) -> None:
        self.model_config: dict[str, Any] = {"width": width, "image_size": image_size}

    def build(self) -> nn.Module:
        return PositionNet(**self.model_config)

    def serving_module(self, model: nn.Module) -> nn.Module:
        return model

    def step(self, model: nn.Module, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return position_loss(model(batch.images), batch.labels["box"], batch.labels["is_subject"])

    @staticmethod
    def predict(model: nn.Module, data: QualityData, preprocess: PreprocessSpec) -> dict[str, np.ndarray]:
        """subject_prob [N], box [N, 4], probability [N]."""
        outs = []
        with torch.inference_mode():
            for b in eval_batches(data, preprocess):
                outs.append(decode(model(b.images)))
        return {
            "subject_prob": torch.cat([o.subject_prob for o in outs]).numpy(),
            "box": torch.cat([o.box for o in outs]).numpy(),
            "probability": torch.cat([o.probability for o in outs]).numpy(),
        }

    def evaluate(
        self, model: nn.Module, data: QualityData, preprocess: PreprocessSpec,
        score_config: PositionScoreConfig | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        out = self.predict(model, data, preprocess)
        cfg = score_config or PositionScoreConfig()
        iou = box_iou_np(out["box"], data.labels["box"])
        truth = data.labels["is_subject"] > 0.5
        scores = np.asarray([
            position_score(tuple(b), float(p), float(s), cfg)
            for b, p, s in zip(out["box"], out["probability"], out["subject_prob"], strict=True)
        ])  # fmt: skip
        metrics = {
            "mean_iou": float(iou.mean()),
            "subject_accuracy": accuracy(out["subject_prob"] > 0.5, truth),
            "score_spearman_composition": spearman(scores, data.labels["composition"]),
            "probability_spearman_iou": spearman(out["probability"], iou),
        }
        metrics["selection"] = metrics["mean_iou"] + metrics["subject_accuracy"]
        return metrics
