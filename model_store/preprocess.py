"""How to feed a model: travels with its weights (in its manifest), never retyped by serving code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

Scaling = Literal["minus_one_one", "imagenet"]
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessSpec:
    """Input contract of one model: square size and pixel scaling.

    Lite0 comes from TF-Lite, which expects [-1, 1]; that scored at least as well as
    ImageNet mean/std here, so it is the default.
    """

    image_size: int = 64
    scaling: Scaling = "minus_one_one"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        return cls(image_size=int(data["image_size"]), scaling=data["scaling"])

    def normalise_uint8(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] at the right size -> float NCHW tensor, channels_last."""
        x = batch.astype(np.float32) / 255.0
        x = x * 2.0 - 1.0 if self.scaling == "minus_one_one" else (x - _IMAGENET_MEAN) / _IMAGENET_STD
        tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return tensor.contiguous(memory_format=torch.channels_last)

    def images_to_uint8(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Resize decoded RGB images to the model's square input."""
        size = (self.image_size, self.image_size)
        out = np.empty((len(images), self.image_size, self.image_size, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            out[i] = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        return out

    def images_to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.normalise_uint8(self.images_to_uint8(images))
