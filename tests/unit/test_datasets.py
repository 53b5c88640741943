"""Fashion-MNIST loader, background photo split and the labelled seller-photo generator."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from model_store.datasets import (
    CATEGORIES,
    CLASS_NAMES,
    DEFAULT_TAXONOMY,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    Degradation,
    FashionMnistError,
    SellerPhotoConfig,
    background_photos,
    generate_batch,
    generate_twin_batch,
    load_fashion_mnist,
    render,
    render_with_labels,
    sample_spec,
    train_val_split,
)
from model_store.datasets.backgrounds import EXTRA_TRAIN_PHOTOS, photo_names
from model_store.datasets.seller_render import subject_rule
from model_store.datasets.torch_dataset import SellerPhotoDataset

N = 120  # images per generated batch: enough for every background and placement


@pytest.fixture(scope="module")
def train():
    return load_fashion_mnist("train")


@pytest.fixture(scope="module")
def batch(train):
    return generate_batch(train.images[:N], train.labels[:N], seed=7)


def _spec(train, index: int, seed: int, config: SellerPhotoConfig):
    rng = np.random.default_rng(seed)
    return sample_spec(index, rng, config, "train", train.images[index], int(train.labels[index]))


def test_loader_shapes_and_counts(train) -> None:
    test = load_fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert load_fashion_mnist("train") is train  # cached per process


def test_loader_names_debian_package_when_missing(tmp_path: Path) -> None:
    with pytest.raises(FashionMnistError, match="dataset-fashion-mnist"):
        load_fashion_mnist("test", root=tmp_path)


def test_loader_checks_magic(tmp_path: Path) -> None:
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(tmp_path / name, "wb") as fh:
            fh.write(b"\x00\x00\x08\x09" + bytes(16))
    with pytest.raises(FashionMnistError, match="magic"):
        load_fashion_mnist("test", root=tmp_path)


def test_taxonomy_covers_all_classes() -> None:
    assert len(CLASS_NAMES) == 10 and set(DEFAULT_TAXONOMY) == set(CLASS_NAMES)
    assert set(DEFAULT_TAXONOMY.values()) == set(CATEGORIES)


def test_train_val_split_is_deterministic_and_disjoint() -> None:
    tr, va = train_val_split(1000, 0.1, seed=3)
    tr2, va2 = train_val_split(1000, 0.1, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2) and len(va) == 100
    assert not set(tr) & set(va) and len(set(tr) | set(va)) == 1000


def test_generator_is_deterministic(train, batch) -> None:
    again, _ = generate_batch(train.images[:N], train.labels[:N], seed=7)
    other, _ = generate_batch(train.images[:N], train.labels[:N], seed=8)
    assert again.tobytes() == batch[0].tobytes()
    assert other.tobytes() != batch[0].tobytes()


def test_batch_matches_torch_dataset(train, batch) -> None:
    dataset = SellerPhotoDataset("train", size=64, seed=7, indices=[5, 17])
    image, fine, labels = dataset[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert torch.equal(image, torch.from_numpy(batch[0][17]).permute(2, 0, 1).float() / 255)
    assert fine == int(train.labels[17]) and labels["index"] == 17
    assert labels["aesthetic"] == batch[1][17].aesthetic


def test_plain_dataset_keeps_source_look(train) -> None:
    image, fine, labels = SellerPhotoDataset("train", size=96, plain=True)[0]
    assert image.shape == (3, 96, 96) and fine == int(train.labels[0])
    assert torch.equal(image[0], image[2]) and float(image[:, 0, 0].max()) == 0.0  # white item on black
    assert labels["category"] == DEFAULT_TAXONOMY[CLASS_NAMES[fine]]


def test_labels_are_consistent(batch) -> None:
    images, labels = batch
    assert {lab.background_class for lab in labels} == {"white", "black", "solid", "gradient", "life_scene"}
    assert 0 < sum(lab.is_subject for lab in labels) < N
    for lab in labels:
        x0, y0, x1, y1 = lab.box
        assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
        assert lab.coverage == pytest.approx((x1 - x0) * (y1 - y0))
        assert lab.is_subject == subject_rule(lab.long_side, lab.centring, lab.cut_off)
        for value in (
            lab.centring,
            lab.cut_off,
            lab.distortion,
            lab.composition,
            lab.contrast,
            lab.aesthetic,
        ):
            assert 0.0 <= value <= 1.0
        assert (lab.clutter == 0.0) == (lab.background_class in ("white", "black", "solid"))


@pytest.mark.parametrize("placement", ["subject", "small", "off_centre", "cut"])
def test_placements_agree_with_subject_rule(train, placement: str) -> None:
    config = SellerPhotoConfig(placement_probs={placement: 1.0})
    _, labels = generate_batch(train.images[:60], train.labels[:60], seed=1, config=config)
    subject_share = np.mean([lab.is_subject for lab in labels])
    assert subject_share >= 0.95 if placement == "subject" else subject_share <= 0.05


def test_white_background_is_white_around_item(train) -> None:
    config = SellerPhotoConfig(size=96, background_probs={"white": 1.0})
    for index in range(20):
        image, lab = render_with_labels(_spec(train, index, index, config).clean())
        x0, y0, x1, y1 = (round(v * 96) for v in lab.box)
        outside = np.ones((96, 96), dtype=bool)
        outside[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = False
        assert (image[outside] == 255).all()


def test_clean_and_degraded_twins(train) -> None:
    clean, noisy, clean_labels, noisy_labels = generate_twin_batch(train.images[:30], train.labels[:30], seed=2)
    assert all(lab.distortion == 0.0 for lab in clean_labels)
    assert all(lab.distortion > 0.0 for lab in noisy_labels)
    assert [c.aesthetic for c in clean_labels] == [n.aesthetic for n in noisy_labels]
    assert all(not np.array_equal(c, n) for c, n in zip(clean, noisy, strict=True))


def test_same_scene_renders_clean_and_noised(train) -> None:
    spec = _spec(train, 3, 0, SellerPhotoConfig(size=128))
    clean, noised = spec.clean(), spec.clean().with_degradation(noise_sigma=15.0)
    assert render(clean).shape == (128, 128, 3) and np.array_equal(render(noised), render(noised))
    diff = render(noised).astype(float) - render(clean).astype(float)
    assert 8.0 < diff.std() < 16.0


def test_distortion_is_monotone() -> None:
    assert Degradation().distortion == 0.0
    for base in (Degradation(), Degradation(blur_radius=1.0, jpeg_quality=40)):
        values = [dataclasses.replace(base, noise_sigma=float(s)).distortion for s in range(0, 60, 5)]
        assert values == sorted(values) and values[1] > values[0]
    assert Degradation(jpeg_quality=20).distortion > Degradation(jpeg_quality=70).distortion > 0.0


def test_held_out_photos_never_in_train(train) -> None:
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS) and len(TEST_PHOTOS) >= 2
    test_pixels = [photo for _, photo in background_photos("test")]
    for _, photo in background_photos("train"):
        assert not any(p.shape == photo.shape and np.array_equal(p, photo) for p in test_pixels)
    config = SellerPhotoConfig(background_probs={"life_scene": 1.0})
    rng = np.random.default_rng(0)
    names = {sample_spec(i, rng, config, "train", train.images[i], int(train.labels[i])).photo_name for i in range(200)}
    assert names <= set(TRAIN_PHOTOS) and len(names) > 5
    names = {sample_spec(i, rng, config, "test").photo_name for i in range(50)}
    assert names <= set(TEST_PHOTOS)


def test_extra_train_photos_join_the_train_split_only(train) -> None:
    config = SellerPhotoConfig(
        background_probs={"life_scene": 1.0}, extra_train_photos=EXTRA_TRAIN_PHOTOS, crop_side_range=(0.12, 0.7)
    )
    rng = np.random.default_rng(1)
    specs = [sample_spec(i, rng, config, "train", train.images[i], int(train.labels[i])) for i in range(300)]
    assert set(EXTRA_TRAIN_PHOTOS) <= {s.photo_name for s in specs} <= set(TRAIN_PHOTOS + EXTRA_TRAIN_PHOTOS)
    assert {sample_spec(i, rng, config, "test").photo_name for i in range(50)} <= set(TEST_PHOTOS)
    with pytest.raises(ValueError, match="held-out"):
        photo_names("train", extra_train=(TEST_PHOTOS[0],))
    with pytest.raises(ValueError, match="crop_side_range"):
        SellerPhotoConfig(crop_side_range=(0.5, 0.2))


def test_default_generator_draws_are_unchanged_by_the_new_options(train) -> None:
    """The shipped embedding models were trained on the default generator: its draws must not move.

    The expected crops were drawn before ``extra_train_photos`` and ``crop_side_range`` existed.
    """
    config = SellerPhotoConfig(background_probs={"life_scene": 1.0})
    rng = np.random.default_rng(5)
    specs = [sample_spec(i, rng, config, "train", train.images[i], int(train.labels[i])) for i in range(5)]
    expected = [
        ("skimage_chelsea", (157.294, 21.132, 367.182, 231.021)),
        ("skimage_cell", (267.725, 139.896, 485.649, 357.819)),
        ("skimage_cell", (267.195, 315.149, 431.199, 479.154)),
        ("skimage_grass", (154.412, 26.044, 480.104, 351.736)),
        ("skimage_page", (64.599, 6.115, 130.711, 72.227)),
    ]
    assert [(s.photo_name, tuple(round(v, 3) for v in s.photo_box)) for s in specs] == expected


def test_duotone_recolours_train_life_scenes_only(train) -> None:
    config = SellerPhotoConfig(background_probs={"life_scene": 1.0}, duotone_prob=1.0)
    rng = np.random.default_rng(2)
    spec = sample_spec(3, rng, config, "train", train.images[3], int(train.labels[3]))
    assert spec.photo_duotone is not None
    dark, light = spec.photo_duotone
    assert float(np.dot(dark, (0.299, 0.587, 0.114))) <= float(np.dot(light, (0.299, 0.587, 0.114)))
    plain = dataclasses.replace(spec, photo_duotone=None)
    assert not np.array_equal(render(spec), render(plain))
    assert all(sample_spec(i, rng, config, "test").photo_duotone is None for i in range(20))


def _background_fields(spec) -> tuple:
    return (spec.background_class, spec.colour_a, spec.colour_b, spec.photo_name, spec.photo_box, spec.degradation)


def test_textured_items_keep_the_scene_and_the_silhouette(train) -> None:
    one_colour = sample_spec(4, np.random.default_rng(5), SellerPhotoConfig(), "test", train.images[4], 0)
    textured = sample_spec(4, np.random.default_rng(5), SellerPhotoConfig(textured_item_prob=1.0), "test",
                           train.images[4], 0)  # fmt: skip
    assert one_colour.item_texture is None and textured.item_texture is not None
    assert textured.item_texture.photo_name in TEST_PHOTOS  # textures of a split come from its own photos
    # the texture is drawn last: the default generator's scenes (and every shipped model's data) do not move
    assert _background_fields(one_colour) == _background_fields(textured)
    image, labels = render_with_labels(textured.clean())
    plain_image, plain_labels = render_with_labels(one_colour.clean())
    assert labels.box == plain_labels.box and labels.cut_off == plain_labels.cut_off
    assert not np.array_equal(image, plain_image)


def test_round_items_fill_the_frame_as_subjects(train) -> None:
    config = SellerPhotoConfig(round_item_prob=1.0)
    for i in range(10):
        spec = sample_spec(i, np.random.default_rng(i), config, "train", train.images[i], int(train.labels[i]))
        _, labels = render_with_labels(spec)
        assert spec.item_texture is not None and spec.placement == "subject"
        assert labels.long_side >= 0.75 and labels.cut_off < 0.05 and labels.is_subject


@pytest.mark.parametrize("field", ["textured_item_prob", "round_item_prob"])
def test_item_probabilities_are_checked(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SellerPhotoConfig(**{field: 1.5})
