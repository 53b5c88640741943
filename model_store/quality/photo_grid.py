"""Real photographs that no quality model trained on, scored and drawn as one PNG grid.

Held out of every training run: the background test photos (``TEST_PHOTOS``) and skimage pictures
the generator never uses (``cat`` is the same scene as the train photo ``chelsea``, marked so).
``horse`` (a silhouette) and ``logo`` (RGBA, put on white) are the closest to product shots.
Each picture is centre-cropped to a square, then resized once to the models' input.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from model_store.datasets import TEST_PHOTOS  # noqa: E402
from model_store.datasets.backgrounds import load_photo  # noqa: E402
from model_store.quality.results import QualityResult  # noqa: E402

EXTRA_PICTURES = ("cat", "horse", "logo", "colorwheel", "retina", "hubble_deep_field", "microaneurysms")
CONTROLS = ("skimage_rocket",)  # a train background photo, shown whole for comparison
NOTES = {"skimage_cat": "same scene as train photo chelsea", "skimage_rocket": "train background photo"}


def _skimage_rgb(name: str) -> np.ndarray:
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:
        image = np.where(image, 0, 255).astype(np.uint8)  # the horse: black silhouette on white
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:  # RGBA logo on a white page
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return image


def unseen_photos() -> list[tuple[str, Image.Image]]:
    """(name, square PIL image) of every picture in the grid."""
    out = [(name, load_photo(name)) for name in TEST_PHOTOS]
    out += [(f"skimage_{n}", _skimage_rgb(n)) for n in EXTRA_PICTURES]
    out += [(name, load_photo(name)) for name in CONTROLS]
    squares = []
    for name, image in out:
        h, w = image.shape[:2]
        s = min(h, w)
        crop = image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        squares.append((name, Image.fromarray(np.ascontiguousarray(crop))))
    return squares


def save_grid(path: Path, names: list[str], images: np.ndarray, results: list[QualityResult], columns: int = 4) -> Path:
    """One panel per image: the model-size input, the predicted box, and every score."""
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 3.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name, image, r in zip(axes.ravel(), names, images, results, strict=False):
        s = image.shape[0]
        ax.imshow(image, interpolation="nearest")
        x0, y0, x1, y1 = (v * s for v in r.position.box)
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
        note = f"\n({NOTES[name]})" if name in NOTES else ""
        b, p, v = r.background, r.position, r.visual
        title = (
            f"{name}{note}\nbg {b.label} p={b.probability:.2f} s={b.score:.2f}\n"
            f"pos {p.category} p={p.probability:.2f} s={p.score:.2f}\n"
            f"aes {v.aesthetic:.2f} noise {v.noise:.2f} vis {v.score:.2f}\nTOTAL {r.total:.2f}"
        )
        ax.set_title(title, fontsize=7.5, loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
