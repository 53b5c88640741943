"""The serving interface on freshly built models in a temporary registry, and on the shipped ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from model_store.preprocess import PreprocessSpec
from model_store.quality.architectures import ARCHITECTURES, KIND_TO_ARCHITECTURE
from model_store.quality.results import QualityResult
from model_store.quality.scorer import DEFAULT_REFS, QualityInputError, QualityModels
from model_store.registry import ModelRegistry, parse_ref
from tests.support.events import good_and_bad_photo

PRE = PreprocessSpec(64, "minus_one_one")


def _save_random(registry: ModelRegistry, preprocess: PreprocessSpec = PRE, position_size: int = 64) -> None:
    torch.manual_seed(0)
    for role in ("background", "position", "visual"):
        arch = KIND_TO_ARCHITECTURE[f"quality-{role}"]
        config = {} if role == "background" else {"image_size": position_size if role == "position" else 64}
        module = ARCHITECTURES[arch](**config)
        fields = {"kind": f"quality-{role}", "architecture": arch, "config": config, "preprocess": preprocess}
        version = parse_ref(DEFAULT_REFS[role])[1] or "1"  # where QualityModels.load() looks by default
        registry.save(f"quality-{role}", version, module.state_dict(), fields)


@pytest.fixture(scope="module")
def random_models(tmp_path_factory) -> QualityModels:
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"))
    _save_random(registry)
    return QualityModels.load(registry)


def _in_unit(x: float) -> bool:
    return 0.0 <= x <= 1.0


def test_score_batch_fields_and_ranges(random_models: QualityModels) -> None:
    batch = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    results = random_models.score_batch(batch, ["digital", "food", None, "apparel", "nope"])
    assert len(results) == 5 and all(isinstance(r, QualityResult) for r in results)
    for r in results:
        assert r.background.label in ("white", "black", "solid", "gradient", "life_scene")
        assert r.position.category in ("subject", "non_subject") and len(r.position.box) == 4
        values = [r.background.probability, r.background.score, r.position.probability, r.position.score]
        values += [*r.position.box, r.visual.aesthetic, r.visual.noise, r.visual.score, r.total]
        assert all(isinstance(v, float) and _in_unit(v) for v in values)
        assert r.weights.background + r.weights.position + r.weights.visual == pytest.approx(1.0)
        assert r.to_dict()["position"]["box"] == list(r.position.box)
    with pytest.raises(dataclasses.FrozenInstanceError):
        results[0].total = 1.0  # type: ignore[misc]


def test_pil_images_are_resized_once_and_match_the_array_path(random_models: QualityModels) -> None:
    big = np.random.default_rng(1).integers(0, 256, (2, 200, 200, 3), dtype=np.uint8)
    pil = [Image.fromarray(b) for b in big]
    from_pil = random_models.score_batch(pil)
    from_array = random_models.score_batch(PRE.images_to_uint8(pil))
    assert from_pil == from_array


def test_bad_input_is_refused(random_models: QualityModels) -> None:
    with pytest.raises(QualityInputError, match="uint8"):
        random_models.score_batch(np.zeros((2, 96, 96, 3), np.uint8))
    with pytest.raises(QualityInputError, match="scenes"):
        random_models.score_batch(np.zeros((2, 64, 64, 3), np.uint8), ["food"])
    assert random_models.score_batch(np.zeros((0, 64, 64, 3), np.uint8)) == []


def test_models_must_share_one_preprocessing(tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    _save_random(registry)
    arch = KIND_TO_ARCHITECTURE["quality-visual"]
    imagenet = PreprocessSpec(64, "imagenet")
    other = {"kind": "quality-visual", "architecture": arch, "config": {}, "preprocess": imagenet}
    registry.save("quality-visual", "99", ARCHITECTURES[arch]().state_dict(), other)
    with pytest.raises(QualityInputError, match="shared preprocessing"):
        QualityModels.load(registry, {**DEFAULT_REFS, "visual": "quality-visual@99"})
    with pytest.raises(QualityInputError, match="role needs"):
        QualityModels.load(registry, {**DEFAULT_REFS, "visual": DEFAULT_REFS["position"]})


def _shipped() -> QualityModels:
    return QualityModels.load()  # the shipped versions are committed: a missing one is a failure


def test_shipped_models_rank_a_good_photo_above_a_bad_one() -> None:
    models = _shipped()
    good, bad = zip(*(good_and_bad_photo(index) for index in range(8)), strict=True)
    good_r = models.score_batch(np.stack(good), ["apparel"] * 8)
    bad_r = models.score_batch(np.stack(bad), ["apparel"] * 8)
    for g, b in zip(good_r, bad_r, strict=True):
        assert g.total > b.total
        assert g.position.score > b.position.score and g.visual.noise > b.visual.noise
    assert sum(r.background.label == "white" for r in good_r) >= 7
    assert sum(r.position.category == "subject" for r in good_r) >= 7


def test_every_model_moves_with_the_device_in_place_and_graphs_stay_a_cpu_matter(tmp_path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    _save_random(registry)
    models = QualityModels.load(registry)
    moved = models.to("meta")  # a device without memory: a module left behind would keep its CPU tensors
    assert moved is models and models.device == torch.device("meta")
    for module in (models.background, models.position, models.visual):
        assert {p.device.type for p in module.parameters()} == {"meta"}
    assert models.as_graphs() is models  # graphs are built for the CPU only

    graphs = QualityModels.load(registry).as_graphs()
    with pytest.raises(QualityInputError, match="graphs are traced for cpu"):
        graphs.to("meta")  # a frozen graph's weights are constants on the CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_on_cuda_the_quality_models_run_there_and_answer_as_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.pipeline_factory import build_quality
    from streams.settings import Settings

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # exact float32 convolutions to compare with
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cpu = QualityModels.load()
    gpu = build_quality(Settings(device="cuda", quality_mode="on"))  # what the worker serves: graphs stay off
    assert isinstance(gpu, QualityModels) and gpu.device.type == "cuda"
    assert all(p.is_cuda for m in (gpu.background, gpu.position, gpu.visual) for p in m.parameters())
    batch = np.random.default_rng(2).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    for c, g in zip(cpu.score_batch(batch), gpu.score_batch(batch), strict=True):
        assert g.total == pytest.approx(c.total, abs=2e-3)
