"""Deterministic seeds and capture/restore of every RNG a training step may touch."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from one integer."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - legacy global RNG, seeded for third-party code
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _numpy_state_out(state: tuple) -> tuple:
    """numpy's legacy state with its key array as a tensor, so ``torch.load(weights_only=True)`` reads it."""
    kind, keys, pos, has_gauss, cached = state
    return (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def rng_state() -> dict[str, Any]:
    """Snapshot of the python, numpy, torch and CUDA RNG states (for checkpoints)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state_out(np.random.get_state()),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
