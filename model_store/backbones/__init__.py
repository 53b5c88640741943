"""Backbone networks shared by the embedder, the teachers and the student."""

from model_store.backbones.lite0 import (
    LITE0_FEATURE_DIM,
    Lite0Backbone,
    build_lite0,
    imagenet_lite0_weights_path,
)

__all__ = ["LITE0_FEATURE_DIM", "Lite0Backbone", "build_lite0", "imagenet_lite0_weights_path"]
