"""Apply a ``Degradation`` in camera order: low contrast (haze), blur (optics), noise (sensor), JPEG.

Every step is skipped at its neutral strength, so a clean spec renders byte-identical to the
undegraded composite. Noise draws from ``noise_seed``, so a render is reproducible.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from model_store.datasets.seller_spec import NO_JPEG, Degradation


def apply_degradation(image: np.ndarray, degradation: Degradation) -> np.ndarray:
    """uint8 HxWx3 in, uint8 HxWx3 out."""
    d = degradation
    out = image
    if d.contrast_factor != 1.0:
        pixels = out.astype(np.float32)
        mean = float(pixels.mean())
        out = np.clip(np.round(mean + d.contrast_factor * (pixels - mean)), 0, 255).astype(np.uint8)
    if d.blur_radius > 0.0:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(d.blur_radius)))
    if d.noise_sigma > 0.0:
        noise = np.random.default_rng(d.noise_seed).standard_normal(out.shape, dtype=np.float32)
        out = np.clip(np.round(out + d.noise_sigma * noise), 0, 255).astype(np.uint8)
    if d.jpeg_quality < NO_JPEG:
        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format="JPEG", quality=int(d.jpeg_quality))
        buffer.seek(0)
        out = np.asarray(Image.open(buffer).convert("RGB"))
    return np.ascontiguousarray(out)
