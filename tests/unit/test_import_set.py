"""The serving path imports no training, dataset-generation, benchmark or research module.

Serving is the worker (``streams.app``, ``streams.run``), the console and the ``enrich`` / ``search``
commands. One fresh interpreter imports them in turn and reports the modules each one added, so a
failure names the entry that pulled a forbidden module in. Training, datasets and benchmarks stay
in the repository; what both sides need (the label vocabulary, the registry, the model
architectures) lives in modules that belong to neither side (``model_store.vocabulary``, ...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# entry name -> the statements that load it, as the process that serves it runs them
ENTRIES: dict[str, str] = {
    "worker app": "import streams.app",
    "worker entry": "import streams.run",
    "console": "import streams.console.app, streams.commands.console",
    "enrich and search": (
        "import streams.cli as cli; cli.build_parser(with_tools=False).parse_args(['enrich', 'x.png']);"
        " import streams.commands.offline, streams.pipeline_factory"
    ),
    # loading is lazy: the modules a worker imports when it builds its models count too
    "models loaded": (
        "from streams.settings import Settings; from streams.pipeline_factory import build_quality;"
        " from processors.embedding import TorchEmbedder; s = Settings();"
        " TorchEmbedder.from_config(s.embedder_config()); build_quality(s)"
    ),
}

# only this project's packages are judged (torch has its own ``torch.utils.benchmark``)
OWN = re.compile(r"^(streams|processors|model_store|infra|research)(\.|$)")
FORBIDDEN: dict[str, re.Pattern[str]] = {
    # the training loop, the distillation and fusion packages, any train / train_* / task_* module
    "training": re.compile(r"^model_store\.(training|distill|fusion)(\.|$)|\.(train|train_\w+|task_\w+)$"),
    # Fashion-MNIST loading and the seller-photo generator
    "dataset generation": re.compile(r"^model_store\.datasets(\.|$)"),
    # any module of ours with "bench" in its dotted name: *benchmark*, bench_*, infra.bench
    "benchmark": re.compile(r"bench"),
    # experiment scripts and the repository's tooling
    "research and tooling": re.compile(r"^(research|infra)(\.|$)"),
}

_PROBE = """
import json, sys
added = {}
for name, code in json.loads(sys.argv[1]).items():
    before = set(sys.modules)
    exec(code, {})
    added[name] = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def forbidden_reason(module: str) -> str | None:
    if not OWN.match(module):
        return None
    return next((why for why, pattern in FORBIDDEN.items() if pattern.search(module)), None)


def test_the_patterns_name_what_they_mean() -> None:
    for module, why in {
        "model_store.training.loop": "training",
        "model_store.distill.coral": "training",
        "model_store.fusion.schedule": "training",
        "model_store.quality.train": "training",
        "model_store.quality.task_background": "training",
        "model_store.datasets.fashion_mnist": "dataset generation",
        "model_store.datasets.seller_photos": "dataset generation",
        "processors.knn_benchmark": "benchmark",
        "processors.pipeline_benchmark": "benchmark",
        "model_store.quality.bench_speed": "benchmark",
        "streams.commands.bench_stream": "benchmark",
        "infra.bench.stream": "benchmark",
        "research.experiments.val_knn": "research and tooling",
    }.items():
        assert forbidden_reason(module) == why, module
    for module in (
        "model_store.quality.scorer",
        "model_store.vocabulary",
        "model_store.embedding_nets",
        "model_store.embedding_loading",
        "processors.pipeline",
        "torch.utils.benchmark",
    ):
        assert forbidden_reason(module) is None, module


def test_serving_entries_import_no_training_dataset_or_benchmark_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(ENTRIES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    added: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    everything = {m for mods in added.values() for m in mods}
    # not vacuous: the worker, its pipeline and the quality models were really imported
    assert {"streams.app", "streams.worker", "processors.pipeline", "model_store.quality.scorer"} <= everything
    assert {"streams.console.app", "streams.commands.offline", "streams.pipeline_factory"} <= everything
    assert {"model_store.embedding_nets", "model_store.embedding_loading"} <= set(added["models loaded"])
    found = {entry: [f"{m} ({why})" for m in mods if (why := forbidden_reason(m))] for entry, mods in added.items()}
    assert not any(found.values()), {entry: mods for entry, mods in found.items() if mods}
