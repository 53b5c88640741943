"""Models served as traced, frozen graphs: same outputs as eager, and eager wherever a graph would be wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from model_store.graphs import frozen_graph
from processors.embedding import TorchEmbedder
from processors.inference import run_models
from streams.pipeline_factory import build_quality
from streams.settings import Settings


def _example(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(n))


class _Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.bn(self.conv(x))
        return y.mean(dim=(2, 3)), y.amax(dim=(2, 3))


class _BatchOfTwoSpecial(_Small):
    """Python control flow on the batch size: a trace on a batch of 2 bakes the wrong branch in."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, top = super().forward(x)
        return (mean * 2, top) if x.shape[0] == 2 else (mean, top)


class _BranchOnAValue(_Small):
    """A branch on a tensor's value: the trace keeps the one branch its example took."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, top = super().forward(x)
        return (mean, top) if bool(x.mean() > 100.0) else (mean, top + 0.0)


class _ReturnsADict(_Small):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        mean, top = super().forward(x)
        return {"mean": mean, "top": top}


def test_a_graph_gives_the_eager_outputs_on_any_batch_size() -> None:
    eager = _Small().eval()
    graph = frozen_graph(eager, _example, name="small")
    assert isinstance(graph, torch.jit.ScriptModule)
    with torch.no_grad():
        for n in (1, 5, 64):
            for e, g in zip(eager(_example(n)), graph(_example(n)), strict=True):
                torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "module", [_BatchOfTwoSpecial(), _BranchOnAValue(), _ReturnsADict()], ids=["wrong-trace", "branch", "untraceable"]
)
def test_a_model_whose_graph_would_be_wrong_or_cannot_be_traced_is_served_eager(module: nn.Module) -> None:
    assert frozen_graph(module, _example, name="odd") is module


def test_the_worker_models_as_graphs_answer_as_the_eager_ones() -> None:
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)) for _ in range(7)]
    answers = []
    for graphs in (False, True):
        settings = Settings(
            cpu_graphs=graphs, quality_mode="on", inference_lanes=1
        )  # leaves torch's threads as they are
        embedder = TorchEmbedder.from_config(settings.embedder_config())
        quality = build_quality(settings)
        assert isinstance(embedder._module, torch.jit.ScriptModule) is graphs  # noqa: SLF001 - what is served
        answers.append(run_models(embedder, quality, images, [None] * len(images)))
    eager, graph = answers
    np.testing.assert_allclose(graph.vectors, eager.vectors, atol=1e-4)
    assert eager.quality is not None and graph.quality is not None
    for e, g in zip(eager.quality, graph.quality, strict=True):
        assert g.background.label == e.background.label and g.position.category == e.position.category
        assert g.total == pytest.approx(e.total, abs=1e-4)
        assert g.position.box == pytest.approx(e.position.box, abs=1e-4)
