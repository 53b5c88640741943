"""Seed 000: category teachers distilled into one unified student (L2 + gamma * CORAL)."""

from model_store.distill.coral import CoralProjector, coral_loss, covariance, multi_layer_coral
from model_store.distill.taxonomy import Taxonomy

__all__ = ["CoralProjector", "Taxonomy", "coral_loss", "covariance", "multi_layer_coral"]
