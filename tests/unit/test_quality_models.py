"""Structure and shapes of the three seed-004 networks and the position loss."""

from __future__ import annotations

import torch
from torch import nn

from model_store.quality.background_model import BackgroundNet, Bottleneck3x3, Bottleneck5x5
from model_store.quality.position_blocks import CSP1, CSP2, SPP, Focus, ResUnit
from model_store.quality.position_loss import box_iou, position_loss, positive_cells
from model_store.quality.position_model import PositionNet, decode
from model_store.quality.visual_model import VisualNet


def _depthwise_kernels(module: nn.Module) -> list[tuple[int, int]]:
    return [m.kernel_size for m in module.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]


def test_bottlenecks_use_the_depthwise_kernels_of_figs_3_and_4() -> None:
    assert _depthwise_kernels(Bottleneck3x3(8, 16)) == [(3, 3)] * 3
    assert sorted(_depthwise_kernels(Bottleneck5x5(8, 16))) == [(1, 5), (3, 3), (5, 1), (5, 5)]
    x = torch.randn(2, 8, 16, 16)
    assert Bottleneck3x3(8, 16, stride=2)(x).shape == (2, 16, 8, 8)
    assert Bottleneck5x5(8, 16, stride=2)(x).shape == (2, 16, 8, 8)


def test_background_net_outputs_five_classes() -> None:
    net = BackgroundNet().eval()
    assert net(torch.randn(3, 3, 64, 64)).shape == (3, 5)
    assert net.classes == ("white", "black", "solid", "gradient", "life_scene")


def test_background_grid_keeps_corners_apart_and_old_configs_read_as_2x2() -> None:
    from model_store.quality.task_background import BackgroundTask

    net = BackgroundNet(grid=4).eval()
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    assert net.classify[-1].in_features == 16 * 128  # 4x4 cells of 4 * width channels
    assert BackgroundTask().model_config == {"width": 32}  # what every 2x2 manifest holds
    assert BackgroundTask(grid=4).model_config == {"width": 32, "grid": 4}


def test_focus_slices_into_four_phases() -> None:
    focus = Focus(3, 8)
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    conv = focus.cbl[0]
    assert conv.in_channels == 12 and focus(x).shape == (2, 8, 2, 2)


def test_csp_spp_units_keep_spatial_size() -> None:
    x = torch.randn(2, 16, 8, 8)
    for unit in (CSP1(16, 32, 2), CSP2(16, 32, 1), SPP(16, 32)):
        assert unit(x).shape == (2, 32, 8, 8)
    assert sum(isinstance(m, ResUnit) for m in CSP1(16, 32, 3).modules()) == 3
    assert not any(isinstance(m, ResUnit) for m in CSP2(16, 32, 2).modules())


def test_position_net_three_outputs_in_range() -> None:
    net = PositionNet().eval()
    raw = net(torch.randn(4, 3, 64, 64))
    assert raw.subject_logit.shape == (4,) and raw.prob_logit.shape == (4, 16, 16)
    det = decode(raw)
    assert det.box.shape == (4, 4) and ((det.box >= 0) & (det.box <= 1)).all()
    assert ((det.probability >= 0) & (det.probability <= 1)).all()


def test_positive_cells_always_include_the_centre_cell() -> None:
    tiny = torch.tensor([[0.50, 0.50, 0.52, 0.52]])
    pos = positive_cells(tiny, 16, 16)
    assert pos.sum() == 1 and pos[0, 8, 8]
    big = positive_cells(torch.tensor([[0.1, 0.1, 0.9, 0.9]]), 16, 16)
    assert 4 <= int(big.sum()) <= 16


def test_box_iou_and_position_loss_backpropagates() -> None:
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert box_iou(a, a).item() == 1.0
    assert abs(box_iou(a, torch.tensor([[0.25, 0.0, 0.75, 0.5]])).item() - 1 / 3) < 1e-6
    net = PositionNet()
    loss, terms = position_loss(net(torch.randn(2, 3, 64, 64)), torch.tensor([[0.2, 0.2, 0.8, 0.9]] * 2),
                                torch.tensor([1.0, 0.0]))  # fmt: skip
    loss.backward()
    assert loss.item() > 0 and set(terms) == {"box", "prob", "subject"}
    assert net.focus.cbl[0].weight.grad is not None


def test_visual_net_two_sub_scores_and_small_models() -> None:
    out = VisualNet().eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 2) and ((out >= 0) & (out <= 1)).all()
    for net in (BackgroundNet(), PositionNet(), VisualNet()):
        assert sum(p.numel() for p in net.parameters()) * 2 < 3e6  # < 3 MB each stored as fp16


def test_background_recolour_keeps_labels_and_is_deterministic() -> None:
    from model_store.datasets.seller_spec import BACKGROUND_CLASSES
    from model_store.quality.task_background import recolour

    white, black = torch.ones(1, 3, 8, 8), -torch.ones(1, 3, 8, 8)
    grey_texture = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)).expand(1, 3, 8, 8) * 2 - 1
    images = torch.cat([white, black, grey_texture, grey_texture])
    labels = torch.tensor([BACKGROUND_CLASSES.index(c) for c in ("white", "black", "life_scene", "gradient")])
    out = recolour(images, labels, step=3, strength=0.5)
    assert torch.equal(out[0], white[0]) and torch.equal(out[1], black[0])
    assert not torch.allclose(out[2, 0], out[2, 1])  # the grey life scene got colour
    assert torch.allclose(out[3], images[3])  # a grey non-life image stays grey (channel order only)
    assert torch.equal(out, recolour(images, labels, step=3, strength=0.5))
    assert not torch.equal(out, recolour(images, labels, step=4, strength=0.5))
    assert out.min() >= -1 and out.max() <= 1
