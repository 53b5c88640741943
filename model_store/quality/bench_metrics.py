"""Benchmark figures on held-out generated photos, from batched model outputs and true labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from model_store.datasets.seller_spec import BACKGROUND_CLASSES
from model_store.preprocess import PreprocessSpec
from model_store.quality.data import QualityData
from model_store.quality.metrics import accuracy, box_iou_np, confusion, spearman
from model_store.quality.results import QualityResult
from model_store.quality.scorer import QualityModels, RawQuality
from model_store.quality.task_visual import VisualTask


def infer_all(models: QualityModels, images: np.ndarray, chunk: int = 256) -> RawQuality:
    parts = [models.infer(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    return RawQuality(*(np.concatenate([getattr(p, f) for p in parts]) for f in RawQuality.__dataclass_fields__))


def background_metrics(raw: RawQuality, data: QualityData) -> dict[str, Any]:
    pred, true = raw.background_probs.argmax(1), data.labels["background"]
    return {
        "accuracy": accuracy(pred, true),
        "per_class_accuracy": {c: accuracy(pred[true == i], i) for i, c in enumerate(BACKGROUND_CLASSES)},
        "confusion_true_by_predicted": confusion(pred, true, len(BACKGROUND_CLASSES)).tolist(),
        "classes": list(BACKGROUND_CLASSES),
    }


def position_metrics(raw: RawQuality, data: QualityData, results: list[QualityResult]) -> dict[str, Any]:
    iou = box_iou_np(raw.box, data.labels["box"])
    truth = data.labels["is_subject"] > 0.5
    scores = np.asarray([r.position.score for r in results])
    long_side = np.maximum(
        data.labels["box"][:, 2] - data.labels["box"][:, 0],
        data.labels["box"][:, 3] - data.labels["box"][:, 1],
    )
    return {
        "mean_iou": float(iou.mean()),
        "median_iou": float(np.median(iou)),
        "iou_at_0.5": float((iou >= 0.5).mean()),
        "mean_iou_subject": float(iou[truth].mean()),
        "mean_iou_non_subject": float(iou[~truth].mean()),
        "mean_iou_small_items": float(iou[long_side < 0.5].mean()),
        "subject_accuracy": accuracy(raw.subject_prob >= 0.5, truth),
        "score_spearman_coverage_centring": spearman(scores, data.labels["composition"]),
        "score_spearman_coverage": spearman(scores, data.labels["coverage"]),
        "score_spearman_centring": spearman(scores, data.labels["centring"]),
        "probability_spearman_iou": spearman(raw.box_probability, iou),
    }


def visual_metrics(raw: RawQuality, data: QualityData, brisque: np.ndarray | None) -> dict[str, Any]:
    lab = data.labels
    aes, noise = raw.visual[:, 0], raw.visual[:, 1]
    degraded = lab["distortion"] > 0
    out: dict[str, Any] = {
        "noise_spearman_distortion": -spearman(noise, lab["distortion"]),
        "noise_spearman_distortion_degraded_only": -spearman(noise[degraded], lab["distortion"][degraded]),
        "aesthetic_spearman_aesthetic": spearman(aes, lab["aesthetic"]),
        "aesthetic_spearman_composition": spearman(aes, lab["composition"]),
        "aesthetic_spearman_contrast": spearman(aes, lab["contrast"]),
        "aesthetic_spearman_one_minus_clutter": spearman(aes, 1.0 - lab["clutter"]),
        "aesthetic_mae": float(np.abs(aes - lab["aesthetic"]).mean()),
    }
    if brisque is not None:
        n = len(brisque)
        d = lab["distortion"][:n]
        out["brisque_subset"] = {
            "n": n,
            "noise_subscore_spearman": -spearman(noise[:n], d),
            "brisque_spearman": spearman(brisque, d),  # BRISQUE rises with distortion: sign flipped to match
            "noise_subscore_spearman_degraded_only": -spearman(noise[:n][d > 0], d[d > 0]),
            "brisque_spearman_degraded_only": spearman(brisque[d > 0], d[d > 0]),
        }
    return out


def robustness(module: nn.Module, data: QualityData, preprocess: PreprocessSpec) -> dict[str, float]:
    """Aesthetic change between the clean and degraded render of the same scenes (degraded rows)."""
    with torch.inference_mode():
        noisy = VisualTask.predict(module, data, preprocess)
        clean = VisualTask.predict(module, data, preprocess, clean=True)
    deg = data.labels["distortion"] > 0
    change = np.abs(noisy[deg, 0] - clean[deg, 0])
    heavy = data.labels["distortion"][deg] >= 0.5
    return {
        "aesthetic_mean_abs_change_clean_vs_noised": float(change.mean()),
        "aesthetic_mean_abs_change_heavy_distortion": float(change[heavy].mean()) if heavy.any() else float("nan"),
        "aesthetic_spearman_on_noised": spearman(noisy[:, 0], data.labels["aesthetic"]),
        "aesthetic_spearman_on_clean": spearman(clean[:, 0], data.labels["aesthetic"]),
        "noise_spearman_distortion": -spearman(noisy[:, 1], data.labels["distortion"]),
        "degraded_images": int(deg.sum()),
    }
