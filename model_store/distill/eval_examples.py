"""The example queries of a stored evaluation: which queries, and their images as small PNG files.

Why apart from the scoring: choosing the queries and writing images is pure bookkeeping that the
console shows to a person; the figures do not depend on it. The same queries are chosen for every
model evaluated under one protocol, so a person sees each model's neighbours of the same photo,
and every image is written once under ``<registry>/evaluations/images/`` whatever model shows it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from model_store.evaluations import IMAGES_DIR

UPSCALE = 2  # 64 px items become 128 px: visible in a browser, still a few KB as PNG


def choose_examples(
    q_cat: np.ndarray, n_categories: int, n: int, seed: int, styles: Sequence[str]
) -> list[tuple[str, int]]:
    """``n`` (style, query row) pairs, seeded: categories in turn, styles in turn, no query twice.

    With 3 categories and 2 styles every (category, style) pair appears once per 6 examples.
    """
    rng = np.random.default_rng((seed, 3))
    pools = [list(rng.permutation(np.flatnonzero(np.asarray(q_cat) == c))) for c in range(n_categories)]
    out: list[tuple[str, int]] = []
    turn = 0
    while len(out) < n and any(pools):
        pool = pools[turn % n_categories]
        turn += 1
        if pool:
            out.append((styles[len(out) % len(styles)], int(pool.pop())))
    return out


def image_key(style: str, split: str, item: int, render_seed: int, size: int) -> str:
    """A file name that changes whenever the pixels would: plain items do not depend on the seed."""
    seeded = f"-r{render_seed}" if style == "seller" else ""
    return f"{style}-{split}-{item}{seeded}-{size}px.png"


def upscale(image: np.ndarray, factor: int = UPSCALE) -> np.ndarray:
    """Nearest-neighbour upscaling of an [H, W, C] uint8 image: every pixel becomes a factor x factor block."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_image(registry_root: Path, key: str, image: np.ndarray) -> str:
    """Write the image once (atomically) and return its path relative to the registry root."""
    relative = IMAGES_DIR / key
    target = Path(registry_root) / relative
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".img-", suffix=".png", dir=target.parent)
        os.close(fd)
        try:
            Image.fromarray(upscale(image)).save(tmp, format="PNG", optimize=True)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the console's server reads it
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return relative.as_posix()
