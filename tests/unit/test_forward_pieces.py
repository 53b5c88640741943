"""A stream batch larger than one forward pass runs in pieces and answers as if run whole, in order."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model_store.devices import CPU_FORWARD_BATCH
from model_store.quality.scorer import QualityInputError
from processors.embedding import TorchEmbedder
from processors.inference import BatchInference, run_models
from streams.pipeline_factory import build_quality
from streams.settings import Settings

IMAGES = 7


def _run(forward_batch_max: int | None) -> tuple[BatchInference, list[int], list[int]]:
    """The worker's models (eager, so hooks see each forward) on 7 distinct images; the batch sizes seen."""
    settings = Settings(cpu_graphs=False, quality_mode="on", inference_lanes=1, forward_batch_max=forward_batch_max)
    embedder = TorchEmbedder.from_config(settings.embedder_config())
    quality = build_quality(settings)
    assert quality is not None
    embed_sizes: list[int] = []
    quality_sizes: list[int] = []
    embedder._module.register_forward_pre_hook(lambda _m, args: embed_sizes.append(args[0].shape[0]))  # noqa: SLF001
    quality.background.register_forward_pre_hook(lambda _m, args: quality_sizes.append(args[0].shape[0]))  # type: ignore[attr-defined]
    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (72, 88, 3), dtype=np.uint8)) for _ in range(IMAGES)]
    return run_models(embedder, quality, images, [None] * IMAGES), embed_sizes, quality_sizes


def test_pieces_answer_as_the_whole_batch_in_input_order() -> None:
    whole, whole_embed, whole_quality = _run(None)
    assert whole_embed == [IMAGES] and whole_quality == [IMAGES]  # the CPU default (32) takes 7 at once
    pieces, embed_sizes, quality_sizes = _run(3)
    assert embed_sizes == [3, 3, 1] and quality_sizes == [3, 3, 1]
    np.testing.assert_allclose(pieces.vectors, whole.vectors, atol=1e-5)
    assert pieces.quality is not None and whole.quality is not None
    for p, w in zip(pieces.quality, whole.quality, strict=True):
        assert p.background.label == w.background.label
        assert p.total == pytest.approx(w.total, abs=1e-5)
        assert p.position.box == pytest.approx(w.position.box, abs=1e-5)
        assert p.visual.aesthetic == pytest.approx(w.visual.aesthetic, abs=1e-5)


@pytest.mark.parametrize(("device", "set_to", "expected"), [("cpu", None, CPU_FORWARD_BATCH), ("cuda", None, None),
                                                            ("cpu", 8, 8), ("cuda", 512, 512)])  # fmt: skip
def test_forward_batch_default_follows_the_device(device: str, set_to: int | None, expected: int | None) -> None:
    settings = Settings(device=device, forward_batch_max=set_to)
    assert settings.forward_batch() == expected
    assert settings.embedder_config().max_forward_batch == expected


def test_quality_infer_of_no_images_is_a_clear_error() -> None:
    quality = build_quality(Settings(cpu_graphs=False, quality_mode="on"))
    assert quality is not None
    with pytest.raises(QualityInputError, match="at least one image"):
        quality.infer([])
    assert quality.score_batch([]) == []
