"""The CPU probes on the served student: centring folds into the bias; mirror averaging placements."""

from __future__ import annotations

import numpy as np
import torch

from model_store.distill.benchmark import embed_batches
from model_store.embedding_nets import build_embedding_net
from model_store.preprocess import PreprocessSpec
from research.experiments.centered_student import centred
from research.experiments.flip_tta import FlipAverage, placement_votes
from research.experiments.val_knn import ValidationKnn


def _fake_validation(seed: int = 0) -> ValidationKnn:
    """24 gallery items (the k = 20 vote needs 20) and 8 queries of random pixels, no dataset rendering."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(32, 32, 32, 3), dtype=np.uint8)
    fine = torch.from_numpy(rng.integers(0, 3, size=32))
    val = ValidationKnn.__new__(ValidationKnn)
    val.sets, val.spec = {"plain": (images[:24], images[24:])}, PreprocessSpec(32, "minus_one_one")
    val.g_fine, val.q_fine, val.to_cat = fine[:24], fine[24:], torch.tensor([0, 0, 1])
    return val


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_embedding_net(32, dim=8, pretrained=False).eval()


def test_centring_zeroes_the_gallery_mean_and_leaves_the_served_net_alone() -> None:
    val, net = _fake_validation(), _net()
    before = net.proj.bias.detach().clone()
    out = centred(net, val)
    emb, _ = embed_batches(lambda x, s: out(x), val.sets["plain"][0], val.spec, 8)
    assert emb.mean(dim=0).abs().max() < 1e-4
    assert torch.equal(net.proj.bias, before)
    assert set(out.state_dict()) == set(net.state_dict())  # same structure, same bytes


def test_mirror_average_is_mirror_invariant_and_placements_are_distinct() -> None:
    val, net = _fake_validation(), _net()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        flip = FlipAverage(net).eval()
        assert torch.allclose(flip(x), flip(x.flip(-1)), atol=1e-5)
    votes = placement_votes(val, net, "plain")
    assert set(votes) == {"served", "gallery and queries", "gallery only", "queries only"}
    assert all(v.shape == (8,) and v.dtype == bool for v in votes.values())
