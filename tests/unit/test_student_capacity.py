"""Student capacity options: a larger working resolution (same bytes) and a residual MLP head."""

from __future__ import annotations

import pytest
import torch

from model_store.distill.config import RecipeConfig
from model_store.embedding_loading import EMBEDDING_ARCH, load_embedding_net
from model_store.embedding_nets import build_embedding_net, count_params
from model_store.registry import ModelRegistry


def _input(n: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(n, 3, 64, 64).contiguous(memory_format=torch.channels_last)


def test_work_size_changes_compute_not_parameters():
    plain = build_embedding_net(64, 16, pretrained=False)
    wide = build_embedding_net(64, 16, pretrained=False, work_size=96)
    assert count_params(plain) == count_params(wide)
    wide.load_state_dict(plain.state_dict(), strict=True)  # a 64 px student warm-starts a 96 px one
    wide.eval(), plain.eval()
    with torch.inference_mode():
        _, taps64 = plain.forward_with_taps(_input(), [15])
        out96, taps96 = wide.forward_with_taps(_input(), [15])
    assert out96.shape == (2, 16)
    assert taps64[0].shape[-1] == 2 and taps96[0].shape[-1] == 3  # last stage: 2x2 at 64 px, 3x3 at 96 px


def test_same_work_size_as_input_is_a_plain_net():
    assert build_embedding_net(64, 16, pretrained=False, work_size=64).work_size is None


def test_work_size_survives_the_registry(tmp_path):
    cfg = RecipeConfig(work_size=96, embed_dim=16)
    assert RecipeConfig.from_dict(cfg.to_dict()).work_size == 96
    net = build_embedding_net(64, 16, pretrained=False, work_size=96).eval()
    reg = ModelRegistry(tmp_path)
    reg.save("student", "1", net.state_dict(), {
        "kind": "student", "architecture": EMBEDDING_ARCH, "config": cfg.to_dict(), "data": {}, "metrics": {},
        "parents": [], "preprocess": cfg.preprocess, "command": "test",
    }, half=False)  # fmt: skip
    loaded, manifest = load_embedding_net(reg, "student@1")
    assert loaded.work_size == 96 and manifest.preprocess["image_size"] == 64
    with torch.inference_mode():
        assert torch.allclose(loaded(_input()), net(_input()), atol=1e-5)


def test_residual_head_warm_starts_exactly_and_counts_its_bytes():
    from model_store.distill.train_student import warm_start

    plain = build_embedding_net(64, 16, pretrained=False).eval()
    wider = build_embedding_net(64, 16, pretrained=False, head_hidden=32).eval()
    warm_start(wider, plain.state_dict())
    with torch.inference_mode():
        assert torch.equal(wider(_input()), plain(_input()))  # the correction starts at zero
    assert count_params(wider) - count_params(plain) == 1280 * 32 + 32 + 32 * 16 + 16
    assert len(list(wider.heads().parameters())) == 6
    broken = {k: v for k, v in plain.state_dict().items() if k != "proj.bias"}
    with pytest.raises(ValueError, match="proj.bias"):
        warm_start(wider, broken)
