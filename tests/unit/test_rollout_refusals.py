"""A worker refuses an activation of a model whose dimension differs from the served one, and keeps serving.

The model is a real registry version (an untrained 128-d student saved beside the shipped 256-d
one in a registry of the test's own); the controller runs its real activation path up to the
refusal, which comes before anything touches Kafka or Milvus.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from model_store.embedding_nets import build_embedding_net
from model_store.registry import ModelRegistry
from streams.activation import ActivationRecord, build_activation, verified_manifest
from streams.metrics import WorkerMetrics
from streams.rollout.controller import RolloutController
from streams.rollout.serving import Served
from streams.settings import Settings

SERVED = "student@17"


def _registry_with_a_128d_student(root: Path) -> ModelRegistry:
    shipped, registry = ModelRegistry(), ModelRegistry(root)
    registry.import_version(shipped, SERVED)
    source = shipped.load_manifest(SERVED)
    net = build_embedding_net(64, 128, pretrained=False, work_size=source.config.get("work_size"),
                              head_hidden=source.config.get("head_hidden"))  # fmt: skip
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)
              if f.name in ("kind", "architecture", "data", "preprocess", "extra")}  # fmt: skip
    registry.save("student-small", "1", net.state_dict(), {**fields, "config": {**source.config, "embed_dim": 128}})
    return registry


def test_an_activation_of_another_dimension_is_refused_and_the_served_model_stays(tmp_path: Path) -> None:
    registry = _registry_with_a_128d_student(tmp_path / "registry")
    settings = Settings(registry_dir=registry.root, model_ref=SERVED)
    metrics = WorkerMetrics()
    pipeline = SimpleNamespace(embedder=SimpleNamespace(dim=256))  # only its dimension is read before the refusal
    served = Served(SERVED, cast(Any, pipeline), cast(Any, None))
    controller = RolloutController(settings, served, cast(Any, None), lambda _: cast(Any, None), set, metrics)
    event = build_activation(settings, verified_manifest(registry, "student-small@1"), "test", SERVED)
    asyncio.run(controller._on_record(ActivationRecord(event, settings.topic_models, 0, 7)))
    assert metrics.registry.get_sample_value("catalog_activation_refused_total", {"reason": "dimension_mismatch"}) == 1
    assert controller.serving_ref == SERVED and controller.rollout is None
    assert metrics.registry.get_sample_value("catalog_rollout_in_progress") in (None, 0.0)
