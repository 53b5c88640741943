"""Serving interface: the three quality models on one shared, already decoded batch.

    models = QualityModels.load()                      # the shipped DEFAULT_REFS
    results = models.score_batch(uint8_nhwc, scenes)   # or a list of PIL images

The batch is resized (PIL images only) and normalised once, with the ``PreprocessSpec`` the three
manifests share, and the three networks run on that one tensor. Scores follow ``scoring``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial

import numpy as np
import torch
from PIL import Image
from torch import nn

from model_store.devices import batch_slices, to_device
from model_store.graphs import frozen_graph, random_batch
from model_store.preprocess import PreprocessSpec
from model_store.quality.architectures import KIND_TO_ARCHITECTURE, build
from model_store.quality.position_model import RawPosition, decode
from model_store.quality.results import BackgroundResult, PositionResult, QualityResult, VisualResult, Weights
from model_store.quality.scoring import ScoringConfig, position_score
from model_store.registry import ModelRegistry
from model_store.vocabulary import BACKGROUND_CLASSES

DEFAULT_REFS: Mapping[str, str] = {
    "background": "quality-background@4",
    "position": "quality-position@1",
    "visual": "quality-visual@1",
}


class QualityInputError(ValueError):
    """The batch or the scenes do not fit the models' input contract."""

    error_code = "quality_bad_input"


@dataclass(frozen=True)
class RawQuality:
    """Batched model outputs (numpy) before any scoring."""

    background_probs: np.ndarray  # [N, C]
    subject_prob: np.ndarray  # [N]
    box: np.ndarray  # [N, 4]
    box_probability: np.ndarray  # [N]
    visual: np.ndarray  # [N, 2] aesthetic, noise


def load_module(registry: ModelRegistry, ref: str, role: str) -> tuple[nn.Module, PreprocessSpec, str]:
    """(eval module, its preprocessing, resolved ref) of one checksum-verified quality version."""
    manifest = registry.load_manifest(ref)
    expected = KIND_TO_ARCHITECTURE[f"quality-{role}"]
    if manifest.architecture != expected or manifest.preprocess is None:
        raise QualityInputError(
            f"{manifest.ref} is a {manifest.architecture!r} model; the {role} role needs {expected!r} "
            "with a preprocess spec in its manifest"
        )
    module = build(manifest.architecture, manifest.config)
    module.load_state_dict(registry.load_state(manifest.ref))
    module = module.eval().to(memory_format=torch.channels_last)
    return module, PreprocessSpec.from_dict(manifest.preprocess), manifest.ref


@dataclass
class QualityModels:
    background: nn.Module
    position: nn.Module
    visual: nn.Module
    preprocess: PreprocessSpec
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    refs: Mapping[str, str] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    max_forward_batch: int | None = None  # images per forward pass; None: the whole batch at once

    @classmethod
    def load(
        cls, registry: ModelRegistry | None = None, refs: Mapping[str, str] = DEFAULT_REFS,
        scoring: ScoringConfig | None = None,
    ) -> QualityModels:  # fmt: skip
        """Load and checksum-verify the three versions; they must share one preprocessing."""
        registry = registry or ModelRegistry()
        modules, specs, resolved = {}, {}, {}
        for role in ("background", "position", "visual"):
            modules[role], specs[role], resolved[role] = load_module(registry, refs[role], role)
        if len(set(specs.values())) != 1:
            raise QualityInputError(f"the quality models need one shared preprocessing, manifests say {specs}")
        return cls(**modules, preprocess=specs["background"], scoring=scoring or ScoringConfig(), refs=resolved)

    @property
    def input_size(self) -> int:
        return self.preprocess.image_size

    def to(self, device: str | torch.device) -> QualityModels:
        """Move the three models to ``device`` in place, as ``nn.Module.to`` does; on a GPU the forwards run there.

        In place, so no other reference is left with modules on one device and ``device`` saying another.
        Graphs are refused: a frozen graph keeps its weights as constants on the device it was traced on.
        """
        target = torch.device(device)
        modules = (self.background, self.position, self.visual)
        if target != self.device and any(isinstance(m, torch.jit.ScriptModule | _RawPositionOut) for m in modules):
            raise QualityInputError(f"graphs are traced for {self.device}; move the eager models, then build graphs")
        for module in modules:
            module.to(target)
        self.device = target
        return self

    def as_graphs(self) -> QualityModels:
        """The same models served as traced, frozen graphs (``model_store.graphs``); each falls back to eager alone.

        Only on the CPU: a graph's win there is running without the GIL, and a GPU gains nothing from it.
        """
        if self.device.type != "cpu":
            return self
        example = partial(random_batch, self.preprocess)
        tupled = _TupleOut(self.position)
        position = frozen_graph(tupled, example, name=self.refs.get("position", "position"))
        return replace(
            self,
            background=frozen_graph(self.background, example, name=self.refs.get("background", "background")),
            position=self.position if position is tupled else _RawPositionOut(position),
            visual=frozen_graph(self.visual, example, name=self.refs.get("visual", "visual")),
        )

    def to_uint8(self, images: np.ndarray | Sequence[Image.Image]) -> np.ndarray:
        """The one shared uint8 NHWC batch at the input size (PIL images are resized once here)."""
        if not isinstance(images, np.ndarray):
            return self.preprocess.images_to_uint8(list(images))
        s = self.input_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise QualityInputError(f"expected uint8 [N, {s}, {s}, 3], got {images.dtype} {list(images.shape)}")
        return images

    def infer(self, images: np.ndarray | Sequence[Image.Image]) -> RawQuality:
        """Per piece of at most ``max_forward_batch`` images: one normalisation, one copy to the models'
        device, three forward passes; float32 outputs on the host, in input order."""
        if len(images) == 0:  # no shape to give the outputs; score_batch answers [] before calling this
            raise QualityInputError("infer needs at least one image")
        pixels = self.to_uint8(images)
        pieces = [self._infer_piece(pixels[part]) for part in batch_slices(len(pixels), self.max_forward_batch)]
        if len(pieces) == 1:
            return pieces[0]
        return RawQuality(*(np.concatenate([getattr(p, f.name) for p in pieces]) for f in fields(RawQuality)))

    def _infer_piece(self, pixels: np.ndarray) -> RawQuality:
        x = to_device(self.preprocess.normalise_uint8(pixels), self.device)
        with torch.inference_mode():
            background = torch.softmax(self.background(x), dim=1)
            det = decode(self.position(x))
            visual = self.visual(x)
        return RawQuality(
            _host(background), _host(det.subject_prob), _host(det.box), _host(det.probability), _host(visual),
        )  # fmt: skip

    def score_batch(
        self, images: np.ndarray | Sequence[Image.Image], scenes: Sequence[str | None] | None = None
    ) -> list[QualityResult]:
        n = len(images)
        scenes = [None] * n if scenes is None else list(scenes)
        if len(scenes) != n:
            raise QualityInputError(f"{n} images but {len(scenes)} scenes")
        if n == 0:
            return []
        return self.results(self.infer(images), scenes)

    def results(self, raw: RawQuality, scenes: Sequence[str | None]) -> list[QualityResult]:
        cfg = self.scoring
        w = cfg.weights.normalised()
        weights = Weights(w.background, w.position, w.visual)
        out = []
        for i, scene in enumerate(scenes):
            probs = {c: float(p) for c, p in zip(BACKGROUND_CLASSES, raw.background_probs[i], strict=True)}
            label = max(probs, key=probs.__getitem__)
            background = BackgroundResult(label, _u(probs[label]), cfg.background_table.score(probs, scene))
            box = tuple(_u(v) for v in raw.box[i])
            subject, prob = _u(raw.subject_prob[i]), _u(raw.box_probability[i])
            position = PositionResult(
                "subject" if subject >= 0.5 else "non_subject",
                box,
                prob,  # type: ignore[arg-type]
                position_score(box, prob, subject, cfg.position),  # type: ignore[arg-type]
            )
            aesthetic, noise = _u(raw.visual[i, 0]), _u(raw.visual[i, 1])
            visual = VisualResult(aesthetic, noise, cfg.visual.score(aesthetic, noise))
            total = w.total(background.score, position.score, visual.score)
            out.append(QualityResult(background, position, visual, total, weights))
        return out


def _host(tensor: torch.Tensor) -> np.ndarray:
    """An output as a float32 host array (GPU outputs are copied back)."""
    return tensor.float().cpu().numpy()


def _u(value: float) -> float:
    """A plain float clipped to [0, 1] (guards fp rounding at the ends)."""
    return min(1.0, max(0.0, float(value)))


class _TupleOut(nn.Module):
    """The position model with its ``RawPosition`` as a tuple: what a traced graph can return."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = self.module(x)
        return raw.subject_logit, raw.prob_logit, raw.boxes


class _RawPositionOut(nn.Module):
    """A traced position graph with its tuple back as the ``RawPosition`` that ``decode`` reads."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> RawPosition:
        return RawPosition(*self.graph(x))
