"""Training task of the background classifier: cross-entropy over ``BACKGROUND_CLASSES``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model_store.datasets.seller_spec import BACKGROUND_CLASSES
from model_store.preprocess import PreprocessSpec
from model_store.quality.background_model import BackgroundNet
from model_store.quality.batches import Batch, eval_batches
from model_store.quality.data import QualityData
from model_store.quality.metrics import accuracy, confusion


class BackgroundTask:
    kind = "quality-background"
    architecture = "seed004-background-bottleneck"
    select_metric = "accuracy"
    with_clean = False

    def __init__(self, width: int = 32) -> None:
        self.model_config: dict[str, Any] = {"width": width}

    def build(self) -> nn.Module:
        return BackgroundNet(**self.model_config)

    def serving_module(self, model: nn.Module) -> nn.Module:
        return model

    def step(self, model: nn.Module, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch.images)
        target = batch.labels["background"]
        loss = F.cross_entropy(logits, target, label_smoothing=0.05)
        return loss, {"acc": float((logits.argmax(1) == target).float().mean())}

    @staticmethod
    def predict(model: nn.Module, data: QualityData, preprocess: PreprocessSpec) -> np.ndarray:
        """Class probabilities [N, C]."""
        with torch.inference_mode():
            probs = [torch.softmax(model(b.images), dim=1) for b in eval_batches(data, preprocess)]
        return torch.cat(probs).numpy()

    def evaluate(self, model: nn.Module, data: QualityData, preprocess: PreprocessSpec) -> dict[str, Any]:
        probs = self.predict(model, data, preprocess)
        pred, true = probs.argmax(1), data.labels["background"]
        per_class = {
            c: accuracy(pred[true == i], i) for i, c in enumerate(BACKGROUND_CLASSES) if (true == i).any()
        }
        return {
            "accuracy": accuracy(pred, true),
            **{f"accuracy_{c}": v for c, v in per_class.items()},
            "confusion": confusion(pred, true, len(BACKGROUND_CLASSES)).tolist(),
        }
