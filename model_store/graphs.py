"""Models served on a CPU as traced, frozen TorchScript graphs.

Why: an eager forward hands Python's GIL back and takes it again around every operator. In a
worker whose other threads run Python (the event loop, the Milvus client, decode), each of
those hand-overs can wait, and the models, not the CPU, become the limit. A traced graph runs
its operators in C++ without taking the GIL between them. Measured on 2 cores, the student on
one thread: 514-552 images/s eager against 565-571 traced alone, and 344-376 against 551-635
beside a thread busy in Python 40 % of the time (``research/experiments/models_alone.py``).

A graph is checked against its eager module on a batch of another size than the one it was
traced on; when tracing fails or the outputs differ, the eager module is served (and logged).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import structlog
import torch
from torch import nn

log = structlog.get_logger("catalog.graphs")
TOLERANCE = 1e-3  # float32 graphs reorder a few additions; the outputs are probabilities and unit vectors


def _leaves(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for item in out for t in _leaves(item)]
    raise TypeError(f"a traced model must return tensors or tuples of them, not {type(out).__name__}")


def frozen_graph(module: nn.Module, example: Callable[[int], torch.Tensor], name: str) -> nn.Module:
    """``module`` traced on ``example(2)`` and frozen, checked on ``example(3)``; the eager module if that fails."""
    module = module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notes and tracer notes on constant shapes
            graph = torch.jit.freeze(torch.jit.trace(module, example(2), check_trace=False))
            probe = example(3)
            expected, got = _leaves(module(probe)), _leaves(graph(probe))
            graph(probe)  # the profiling executor optimises on its second call: pay it here, not on a batch
        if len(expected) != len(got) or any(
            e.shape != g.shape or not torch.allclose(e.float(), g.float(), atol=TOLERANCE)
            for e, g in zip(expected, got, strict=False)
        ):
            raise ValueError("the traced graph's outputs differ from the eager module's")
    except Exception as exc:  # noqa: BLE001 - any failure: serve the eager module, which is always correct
        log.warning("graph_not_used", model=name, error=f"{type(exc).__name__}: {exc}", serving="eager")
        return module
    return graph
