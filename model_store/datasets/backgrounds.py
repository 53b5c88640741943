"""Real photographs for life-scene backgrounds, split so test photos are never trained on.

Only pictures that ship inside scikit-image and scikit-learn are used (no pooch download).
Left out on purpose: ``cat`` (the same picture as ``chelsea``, it would leak), ``retina`` and
``hubble_deep_field`` (mostly black, so crops look like a black background), and the synthetic
ones (``colorwheel``, ``logo``, ``checkerboard``, ``binary_blobs``, ``shepp_logan_phantom``).
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

#: Held out entirely for evaluation: two sklearn sample images and two skimage pictures.
TEST_PHOTOS: tuple[str, ...] = ("sklearn_china", "sklearn_flower", "skimage_astronaut", "skimage_coffee")
TRAIN_PHOTOS: tuple[str, ...] = (
    "skimage_chelsea", "skimage_rocket", "skimage_coins", "skimage_camera",
    "skimage_immunohistochemistry", "skimage_grass", "skimage_gravel", "skimage_brick",
    "skimage_moon", "skimage_clock", "skimage_page", "skimage_text", "skimage_cell",
)  # fmt: skip
#: Colour photos a generator may add to the train split (``SellerPhotoConfig.extra_train_photos``);
#: the default generator leaves them out, so the shipped embedding models' training data is unchanged.
EXTRA_TRAIN_PHOTOS: tuple[str, ...] = ("skimage_stereo_motorcycle",)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 from a grey, RGB or RGBA picture."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """One photo by its prefixed name, as a read-only uint8 HxWx3 array."""
    source, _, short = name.partition("_")
    if source == "skimage":
        import skimage.data

        image = getattr(skimage.data, short)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity); the left view
            image = image[0]
    elif source == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{short}.jpg")
    else:
        raise KeyError(f"unknown photo {name!r}; names start with 'skimage_' or 'sklearn_'")
    rgb = _as_rgb(image)
    rgb.setflags(write=False)
    return rgb


def photo_names(split: Literal["train", "test"], extra_train: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Names of the photos of a split (train and test never share a photo)."""
    if split == "train":
        leaked = set(extra_train) & set(TEST_PHOTOS)
        if leaked:
            raise ValueError(f"held-out test photos cannot be train photos: {sorted(leaked)}")
        return TRAIN_PHOTOS + tuple(n for n in extra_train if n not in TRAIN_PHOTOS)
    if split == "test":
        return TEST_PHOTOS
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def background_photos(split: Literal["train", "test"]) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 HxWx3) for every photo of a split, in a fixed order."""
    return [(name, load_photo(name)) for name in photo_names(split)]


def all_photos() -> list[tuple[str, np.ndarray]]:
    """Every photo, train then test: for sanity checks of the models on real pictures."""
    return background_photos("train") + background_photos("test")
