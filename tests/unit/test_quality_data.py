"""Rendered quality data, training batches and the BRISQUE adapter."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import skimage.data

from model_store.datasets import load_fashion_mnist
from model_store.datasets.seller_photos import render_with_labels, spec_for
from model_store.datasets.seller_spec import SellerPhotoConfig
from model_store.preprocess import PreprocessSpec
from model_store.quality.batches import BatchSampler, flip_boxes
from model_store.quality.data import DataSpec, load_data, prune_cache


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return load_data(DataSpec("train", 40, seed=3), cache=tmp_path_factory.mktemp("cache"), workers=1)


def test_rows_match_the_generator_and_clean_twins(small) -> None:
    source = load_fashion_mnist("train")
    index = int(DataSpec("train", 40, seed=3).indices()[5])
    spec = spec_for(source.images[index], int(source.labels[index]), index, 3, SellerPhotoConfig(), "train")
    image, labels = render_with_labels(spec)
    assert np.array_equal(small.images[5], image)
    assert np.array_equal(small.clean[5], render_with_labels(spec.clean())[0])
    assert small.labels["distortion"][5] == pytest.approx(labels.distortion)
    assert np.allclose(small.labels["box"][5], labels.box)
    degraded = small.labels["distortion"] > 0
    assert degraded.any() and not np.array_equal(small.images[degraded], small.clean[degraded])
    assert np.array_equal(small.images[~degraded], small.clean[~degraded])


def test_cache_round_trip_and_split_disjointness(small, tmp_path) -> None:
    spec = DataSpec("train", 40, seed=3)
    first = load_data(spec, cache=tmp_path, workers=1)
    again = load_data(spec, cache=tmp_path, workers=1)  # read back from the .npz
    assert np.array_equal(first.images, again.images) and set(first.labels) == set(again.labels)
    train, val = set(DataSpec("train", 10**6).indices()), set(DataSpec("val", 10**6).indices())
    assert train.isdisjoint(val) and len(train) + len(val) == 60000


def test_cache_evicts_least_recently_used_renders_past_its_limit(tmp_path) -> None:
    for age, name in enumerate(["train-10-c.npz", "train-10-b.npz", "train-10-a.npz", "val-5-x.tmp.npz"]):
        (tmp_path / name).write_bytes(b"x" * 100)
        os.utime(tmp_path / name, (1_000_000 - age * 1000, 1_000_000 - age * 1000))  # a: the oldest
    removed = prune_cache(tmp_path, limit_bytes=250, keep=tmp_path / "train-10-a.npz")
    assert [f.name for f in removed] == ["train-10-b.npz"]  # oldest but kept: a; a write in progress: tmp
    assert sorted(f.name for f in tmp_path.iterdir()) == ["train-10-a.npz", "train-10-c.npz", "val-5-x.tmp.npz"]
    assert prune_cache(tmp_path, limit_bytes=10**6) == []


def test_a_cache_hit_counts_as_a_use_and_a_write_prunes(tmp_path) -> None:
    spec, other = DataSpec("train", 6, seed=3), DataSpec("val", 6, seed=3)
    load_data(spec, cache=tmp_path, workers=1)
    first = next(tmp_path.glob("train-*.npz"))
    os.utime(first, (1_000_000, 1_000_000))
    load_data(spec, cache=tmp_path, workers=1)  # a hit: now the most recently used
    assert first.stat().st_mtime > 1_000_000
    load_data(other, cache=tmp_path, workers=1, cache_limit_bytes=first.stat().st_size + 1)
    assert [f.name for f in tmp_path.glob("*.npz")] == [next(tmp_path.glob("val-*.npz")).name]


def test_flip_mirrors_boxes_and_batches_are_deterministic(small) -> None:
    box = np.array([[0.1, 0.2, 0.4, 0.9], [0.1, 0.2, 0.4, 0.9]], np.float32)
    flipped = flip_boxes(box, np.array([True, False]))
    assert np.allclose(flipped[0], [0.6, 0.2, 0.9, 0.9]) and np.allclose(flipped[1], box[1])
    sampler = BatchSampler(small, 8, PreprocessSpec(64), seed=1, with_clean=True)
    a, b = sampler(7), sampler(7)
    assert a.images.shape == (8, 3, 64, 64) and a.clean is not None
    assert (a.images == b.images).all() and (a.labels["box"] == b.labels["box"]).all()


def test_brisque_adapter_scores_noise_worse_without_opencv() -> None:
    from model_store.quality.brisque_adapter import brisque_score

    photo = skimage.data.astronaut()[::4, ::4]
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 40, photo.shape), 0, 255).astype(np.uint8)
    assert brisque_score(noisy) > brisque_score(photo)
    assert "cv2" not in sys.modules or hasattr(sys.modules["cv2"], "__file__")


def test_named_generators_change_train_data_but_never_the_test_split() -> None:
    default, colour = DataSpec("train", 40), DataSpec("train", 40, generator="colour_scenes")
    assert default.key() != colour.key() and colour.config().extra_train_photos
    assert default.indices().tolist() == colour.indices().tolist()
    with pytest.raises(ValueError, match="default generator"):
        DataSpec("test", 40, generator="colour_scenes")
    with pytest.raises(ValueError, match="unknown generator"):
        DataSpec("train", 40, generator="nope")
