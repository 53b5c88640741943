"""Moving a batch onto the device its model lives on, and how many images one forward pass takes there."""

from __future__ import annotations

import torch

# Per image, on this project's 2-core CPU, a forward over 64 images costs 1.17x one over 32, over 256
# 1.75x (research/experiments/forward_batch_size.py): larger activations no longer fit the caches.
CPU_FORWARD_BATCH = 32


def batch_slices(n: int, size: int | None) -> list[slice]:
    """The pieces a batch of ``n`` runs in, at most ``size`` each, in input order (None: one piece)."""
    step = size or max(1, n)
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CPU: the tensor itself. CUDA: copied from page-locked memory without blocking the host.

    Why: with batches in flight the host decodes the next batch while the device runs this one;
    a pinned source lets the copy run as DMA, queued before the forward on the same stream.
    """
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
