"""Models served on a CPU as traced, frozen TorchScript graphs.

Why: an eager forward hands Python's GIL back and takes it again around every operator. In a
worker whose other threads run Python (the event loop, the Milvus client, decode), each of
those hand-overs can wait, and the models, not the CPU, become the limit. A traced graph runs
its operators in C++ without taking the GIL between them. Measured on 2 cores, the student on
one thread: 514-552 images/s eager against 565-571 traced alone, and 344-376 against 551-635
beside a thread busy in Python 40 % of the time (``research/experiments/models_alone.py``).

A graph is checked against its eager module on batch sizes other than the one it was traced on;
when tracing fails, follows a branch on a tensor's value, or the outputs differ, the eager
module is served (and logged).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import structlog
import torch
from torch import nn

from model_store.preprocess import PreprocessSpec

log = structlog.get_logger("catalog.graphs")
TOLERANCE = 1e-3  # of each output's largest magnitude: float32 graphs reorder a few additions
CHECK_SIZES = (1, 3)  # batch sizes the graph must answer as eager does; traced on 2


def random_batch(preprocess: PreprocessSpec, n: int) -> torch.Tensor:
    """``n`` random images as a model with that preprocessing sees them (to trace and check a graph)."""
    size = preprocess.image_size
    pixels = np.random.default_rng(n).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return preprocess.normalise_uint8(pixels)


def _leaves(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for item in out for t in _leaves(item)]
    raise TypeError(f"a traced model must return tensors or tuples of them, not {type(out).__name__}")


def _same(expected: list[torch.Tensor], got: list[torch.Tensor]) -> bool:
    if len(expected) != len(got):
        return False
    for e, g in zip(expected, got, strict=True):
        if e.shape != g.shape:
            return False
        if e.numel() and float((e.float() - g.float()).abs().max()) > TOLERANCE * max(1.0, float(e.abs().max())):
            return False
    return True


def frozen_graph(module: nn.Module, example: Callable[[int], torch.Tensor], name: str) -> nn.Module:
    """``module`` traced on ``example(2)`` and frozen, checked on each of ``CHECK_SIZES``; else the eager module.

    A trace records the branch Python took; a tracer warning that a tensor became a Python
    boolean means the graph may take another branch than eager would, so it is not served.
    """
    module = module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = torch.jit.freeze(torch.jit.trace(module, example(2), check_trace=False))
            branched = [str(w.message) for w in caught if "Python boolean" in str(w.message)]
            if branched:
                raise ValueError(f"the trace followed a data-dependent branch: {branched[0]}")
            for n in CHECK_SIZES:
                probe = example(n)
                if not _same(_leaves(module(probe)), _leaves(graph(probe))):
                    raise ValueError(f"the traced graph's outputs differ from the eager module's on a batch of {n}")
    except Exception as exc:  # noqa: BLE001 - any failure: serve the eager module, which is always correct
        log.warning("graph_not_used", model=name, error=f"{type(exc).__name__}: {exc}", serving="eager")
        return module
    return graph
