"""The models of a pipeline run in a child process of their own, so they never wait for the worker's GIL.

Why: an eager torch forward releases the GIL inside every operator and takes it back after
each one. The student and the three quality models are small (64 px input), so a batch is
hundreds of short operators, and each time another thread of the worker holds the GIL
(the event loop, the Milvus client parsing a search result, a decode thread) the model thread
waits for it, up to the interpreter's switch interval. Measured here: ``run_models`` at
430 images/s alone fell to 29 images/s beside one busy Python thread; inside the worker at full
load the models ran at two thirds of their rate alone. In a process of its own the models
have a GIL nobody else takes (``research/experiments/models_beside_python.py``).

The worker sends the decoded images (small: intake shrank them on load) and gets back what
``run_models`` returns, pickled. The child dies with the worker (``PR_SET_PDEATHSIG`` on
Linux). If it dies on its own, the batch fails with ``TransientFailure`` (retried by the
worker, like a Milvus outage) and the next call starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from processors.embedding import EmbedderConfig, TorchEmbedder
from processors.errors import TransientFailure
from processors.inference import BatchInference, QualityScorer, run_models


@dataclass(frozen=True)
class QualitySpec:
    """What the child needs to load the same quality models the worker resolved."""

    refs: Mapping[str, str]  # role -> registry ref, as resolved by the worker
    scoring: Any  # model_store.quality.scoring.ScoringConfig (picklable dataclass)
    registry_dir: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    embedder: EmbedderConfig
    quality: QualitySpec | None = None


# The child's loaded models. Set once by ``_load_models`` in the child (ProcessPoolExecutor's
# initializer); never set in the worker.
_CHILD_MODELS: dict[str, Any] = {}


def _die_with_parent() -> None:
    with contextlib.suppress(AttributeError, OSError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: Linux only


def _load_models(spec: ModelSpec, parent_pid: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which stops us
    if os.getppid() != parent_pid:
        os._exit(0)
    embedder = TorchEmbedder.from_config(spec.embedder)
    quality: QualityScorer | None = None
    if spec.quality is not None:
        from model_store.quality.scorer import QualityModels
        from model_store.registry import ModelRegistry

        registry = ModelRegistry(spec.quality.registry_dir) if spec.quality.registry_dir is not None else None
        quality = QualityModels.load(registry=registry, refs=spec.quality.refs, scoring=spec.quality.scoring)
    _CHILD_MODELS.update(embedder=embedder, quality=quality)


def _ping() -> int:
    return os.getpid()


def _run(images: Sequence[Image.Image], scenes: Sequence[str | None]) -> BatchInference:
    return run_models(_CHILD_MODELS["embedder"], _CHILD_MODELS["quality"], images, scenes)


class ModelProcess:
    """One child process holding the pipeline's models; ``run`` is ``run_models`` over there."""

    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load_models,
                initargs=(self._spec, os.getpid()),
            )
        return self._pool

    async def start(self) -> int:
        """Start the child and wait until its models are loaded; returns its pid."""
        return await self._call(_ping)

    async def run(self, images: Sequence[Image.Image], scenes: Sequence[str | None]) -> BatchInference:
        return await self._call(_run, list(images), list(scenes))

    async def _call(self, fn: Any, *args: Any) -> Any:
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise TransientFailure("model_process_died", f"the models' process exited: {exc}", stage="models") from exc

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            self.restarts += 1
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
