"""Offline data: Fashion-MNIST items, real background photos and the labelled seller-photo generator.

Torch Datasets live in ``model_store.datasets.torch_dataset`` (not imported here, to keep torch
out of code that only needs numpy arrays).
"""

from model_store.datasets.backgrounds import TEST_PHOTOS, TRAIN_PHOTOS, all_photos, background_photos
from model_store.datasets.fashion_mnist import (
    CATEGORIES,
    CLASS_NAMES,
    DEFAULT_TAXONOMY,
    FashionMnistError,
    FashionMnistSplit,
    category_of,
    load_fashion_mnist,
    train_val_split,
)
from model_store.datasets.seller_photos import (
    BACKGROUND_CLASSES,
    PLACEMENTS,
    Degradation,
    PhotoSpec,
    SellerPhotoConfig,
    SellerPhotoLabels,
    generate_batch,
    generate_twin_batch,
    render,
    render_with_labels,
    sample_spec,
)

__all__ = [
    "BACKGROUND_CLASSES", "CATEGORIES", "CLASS_NAMES", "DEFAULT_TAXONOMY", "PLACEMENTS", "TEST_PHOTOS",
    "TRAIN_PHOTOS", "Degradation", "FashionMnistError", "FashionMnistSplit", "PhotoSpec",
    "SellerPhotoConfig", "SellerPhotoLabels", "all_photos", "background_photos", "category_of",
    "generate_batch", "generate_twin_batch", "load_fashion_mnist", "render", "render_with_labels",
    "sample_spec", "train_val_split",
]  # fmt: skip
