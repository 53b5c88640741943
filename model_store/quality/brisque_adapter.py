"""BRISQUE (PyPI ``brisque`` 0.2.0) as a baseline for the noise sub-score, without touching site-packages.

Two things stand between the package and this environment, both handled here:

- it imports OpenCV only for one call, a 2x bicubic downscale; when ``cv2`` is not installed a
  stand-in module with that one ``resize`` (scipy cubic spline, ``order=3``) is put in
  ``sys.modules`` just for the import, then removed again. Scores then differ slightly from
  OpenCV's, which is fine for a rank correlation;
- with numpy 2 its fitted parameters come back as 1-element arrays inside an object array, which
  numpy 2.x refuses (or warns about) in ``float()``; ``_flatten`` turns them into plain floats.

BRISQUE is lower-is-better, 0 to about 100. ``brisque_scores`` returns the raw scores.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
from scipy import ndimage


def _cubic_resize(image: np.ndarray, dsize: object, fx: float = 1.0, fy: float = 1.0, interpolation: int = 2):
    if dsize is not None:
        raise NotImplementedError("the stand-in supports only fx/fy scaling")
    return ndimage.zoom(np.asarray(image, dtype=np.float64), (fy, fx), order=3)


@contextlib.contextmanager
def _cv2_stand_in() -> Iterator[None]:
    if importlib.util.find_spec("cv2") is not None:
        yield
        return
    shim = types.ModuleType("cv2")
    shim.INTER_CUBIC = 2  # type: ignore[attr-defined]
    shim.resize = _cubic_resize  # type: ignore[attr-defined]
    sys.modules["cv2"] = shim
    try:
        yield
    finally:
        sys.modules.pop("cv2", None)


def _flatten(features: Iterable[object]) -> np.ndarray:
    return np.asarray([float(np.asarray(f, dtype=np.float64).reshape(-1)[0]) for f in features], dtype=np.float64)


@functools.cache
def _scorer():
    with _cv2_stand_in():
        from brisque.brisque import BRISQUE

    class _Numpy2Brisque(BRISQUE):
        def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):  # noqa: ANN001
            return _flatten(super().calculate_brisque_features(image, kernel_size, sigma))

    return _Numpy2Brisque(url=False)


def brisque_score(image: np.ndarray) -> float:
    """Raw BRISQUE of one uint8 HxWx3 image (lower = better quality)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(_scorer().score(np.asarray(image)))


def brisque_scores(images: np.ndarray) -> np.ndarray:
    return np.asarray([brisque_score(im) for im in images], dtype=np.float64)
