"""Does a background model take a multi-coloured, textured product for a life scene?

``PYTHONPATH=. .venv/bin/python research/experiments/textured_products.py --registry runs/exp-reg
--models quality-background@2 quality-background@3``: Fashion-MNIST test items on test-split scenes
(held-out photos), rendered three times on the same backgrounds: as one-colour items (the default
generator), with every item filled by a texture cut from a held-out photo (half of them as vivid
duotones), and as textured round products filling 0.8-1.0 of the frame.
Prints background accuracy per class for each set, and each model's class on the real pictures
of the photo grid that have a plain background (logo on white, colour wheel and retina on black).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from model_store.datasets import BACKGROUND_CLASSES, SellerPhotoConfig, load_fashion_mnist, train_val_split
from model_store.datasets.seller_photos import render_with_labels
from model_store.datasets.seller_sampling import sample_spec
from model_store.quality.photo_grid import unseen_photos
from model_store.quality.scorer import load_module
from research.experiments.val_knn import parse_with_registry

PLAIN_PICTURES = {"skimage_logo": "white", "skimage_colorwheel": "black", "skimage_retina": "black"}


def render_sets(n: int, seed: int, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Images of the same n scenes (one draw of backgrounds) with three kinds of item, and labels.

    The item draws come last in ``sample_spec``, so the three sets share every background. ``val``:
    held-out train items on train photos (for choosing a recipe); ``test``: test items on test photos.
    """
    if split == "val":
        data = load_fashion_mnist("train")
        indices = train_val_split(len(data), 0.1, 0)[1][:n]  # the quality recipes' validation items
    else:
        data = load_fashion_mnist("test")
        indices = np.arange(min(n, len(data)))
    photos = "train" if split == "val" else "test"
    configs = {
        "one colour": SellerPhotoConfig(),
        "textured": SellerPhotoConfig(textured_item_prob=1.0),
        "round, fills the frame": SellerPhotoConfig(textured_item_prob=1.0, round_item_prob=1.0),
    }
    images: dict[str, list[np.ndarray]] = {k: [] for k in configs}
    labels = []
    for i in indices:
        for kind, cfg in configs.items():
            rng = np.random.default_rng((seed, int(i)))
            spec = sample_spec(int(i), rng, cfg, photos, data.images[i], int(data.labels[i]))
            images[kind].append(render_with_labels(spec)[0])
        labels.append(BACKGROUND_CLASSES.index(spec.background_class))
    return {k: np.stack(v) for k, v in images.items()}, np.asarray(labels)


def predict(module: torch.nn.Module, preprocess, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([module(preprocess.normalise_uint8(images[i : i + 256])).argmax(1).numpy()
                               for i in range(0, len(images), 256)])  # fmt: skip


def per_class(pred: np.ndarray, true: np.ndarray) -> str:
    cells = [f"{(pred[true == c] == c).mean():.3f}" for c in range(len(BACKGROUND_CLASSES))]
    return f"{(pred == true).mean():.3f} | " + " | ".join(cells)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--split", choices=["val", "test"], default="test")
    args, registry = parse_with_registry(p)
    sets, true = render_sets(args.n, args.seed, args.split)
    pictures = [(name, image) for name, image in unseen_photos() if name in PLAIN_PICTURES]
    print("| model | items | accuracy | " + " | ".join(BACKGROUND_CLASSES) + " |")
    print("|---|---|---|" + "---|" * len(BACKGROUND_CLASSES))
    verdicts = []
    for ref in args.models:
        module, preprocess, _ = load_module(registry, ref, "background")
        for kind, images in sets.items():
            print(f"| {ref} | {kind} | {per_class(predict(module, preprocess, images), true)} |", flush=True)
        real = predict(module, preprocess, preprocess.images_to_uint8([im for _, im in pictures]))
        verdicts.append(f"{ref}: " + ", ".join(f"{n} ({PLAIN_PICTURES[n]}) -> {BACKGROUND_CLASSES[c]}"
                                              for (n, _), c in zip(pictures, real, strict=True)))  # fmt: skip
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
