"""``to_device``: a plain copy on CPU; pinned memory and a non-blocking copy on CUDA (run where a GPU is)."""

from __future__ import annotations

import pytest
import torch

from model_store.devices import to_device


def test_on_cpu_the_batch_is_neither_pinned_nor_copied() -> None:
    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    assert to_device(x, torch.device("cpu")) is x


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_on_cuda_the_copy_arrives_whole_before_the_forward_reads_it() -> None:
    x = torch.randn(64, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    on_gpu = to_device(x, torch.device("cuda"))
    assert on_gpu.is_cuda
    assert torch.equal((on_gpu * 2).cpu(), x * 2)  # same stream: the kernel waits for the copy
