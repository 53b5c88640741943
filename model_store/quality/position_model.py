"""Product position detector of seed 004 (fig. 5): a single-stage, one-object detector.

Backbone Focus -> CBL/CSP1_X stages -> SPP -> CSP2_X, a small PAN-style neck (upsample + Concat +
CSP2_X) down to stride 4, and three outputs (Output1-3 of fig. 5):

1. position category: one logit, subject vs non-subject, from the flattened stride-16 map (Flatten,
   not global pooling, so where the product sits is not thrown away);
2. box: per output cell, distances from the cell centre to the four box edges (FCOS-style), as
   fractions of the frame; the decoded box is (x0, y0, x1, y1) in [0, 1];
3. coordinate probability: per cell, the sigmoid of a logit trained to the IoU of that cell's box
   with the true box (YOLOv5's IoU-aware objectness), i.e. the model's estimate of its box's IoU.

``decode`` keeps the ``top_k`` most probable cells and averages their boxes weighted by probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from model_store.quality.position_blocks import CBL, CSP1, CSP2, SPP, Focus


@dataclass(frozen=True)
class RawPosition:
    subject_logit: torch.Tensor  # [N]
    prob_logit: torch.Tensor  # [N, H, W]
    boxes: torch.Tensor  # [N, 4, H, W], (x0, y0, x1, y1) in frame fractions, per cell


@dataclass(frozen=True)
class Detection:
    subject_prob: torch.Tensor  # [N]
    box: torch.Tensor  # [N, 4] in [0, 1]
    probability: torch.Tensor  # [N]


def cell_centres(h: int, w: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cx [1, 1, W], cy [1, H, 1]) of the output cells, as frame fractions."""
    cx = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    cy = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    return cx.view(1, 1, w), cy.view(1, h, 1)


class PositionNet(nn.Module):
    def __init__(self, width: int = 16, image_size: int = 64) -> None:
        super().__init__()
        w = width
        self.focus = Focus(3, w)  # /2
        self.s4 = nn.Sequential(CBL(w, 2 * w, 3, 2), CSP1(2 * w, 2 * w, 1))  # /4
        self.s8 = nn.Sequential(CBL(2 * w, 4 * w, 3, 2), CSP1(4 * w, 4 * w, 2))  # /8
        self.s16 = nn.Sequential(CBL(4 * w, 6 * w, 3, 2), SPP(6 * w, 6 * w), CSP2(6 * w, 6 * w, 1))  # /16
        self.lat16 = CBL(6 * w, 4 * w)
        self.up8 = CSP2(8 * w, 4 * w, 1)
        self.lat8 = CBL(4 * w, 2 * w)
        self.up4 = CSP2(4 * w, 3 * w, 1)
        self.head = nn.Conv2d(3 * w, 5, 1)  # 1 probability logit + 4 edge distances per cell
        grid = image_size // 16
        self.category = nn.Sequential(
            CBL(6 * w, 2 * w), nn.Flatten(), nn.Linear(2 * w * grid * grid, 64),
            nn.LeakyReLU(0.1, inplace=True), nn.Linear(64, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> RawPosition:
        p4 = self.s4(self.focus(x))
        p8 = self.s8(p4)
        p16 = self.s16(p8)
        t8 = self.up8(torch.cat([F.interpolate(self.lat16(p16), scale_factor=2.0), p8], dim=1))
        t4 = self.up4(torch.cat([F.interpolate(self.lat8(t8), scale_factor=2.0), p4], dim=1))
        out = self.head(t4)
        n, _, h, w = out.shape
        cx, cy = cell_centres(h, w, out.device)
        dist = torch.sigmoid(out[:, 1:].float())  # left, top, right, bottom
        boxes = torch.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], dim=1)
        return RawPosition(self.category(p16).squeeze(1).float(), out[:, 0].float(), boxes.clamp(0.0, 1.0))


def decode(raw: RawPosition, top_k: int = 4) -> Detection:
    """One box per image: probability-weighted mean of the ``top_k`` most probable cells."""
    n = raw.prob_logit.shape[0]
    prob = torch.sigmoid(raw.prob_logit).reshape(n, -1)
    boxes = raw.boxes.reshape(n, 4, -1)
    top_p, top_i = prob.topk(min(top_k, prob.shape[1]), dim=1)
    picked = boxes.gather(2, top_i.unsqueeze(1).expand(-1, 4, -1))  # [N, 4, k]
    weights = top_p / top_p.sum(dim=1, keepdim=True).clamp_min(1e-6)
    box = (picked * weights.unsqueeze(1)).sum(dim=2).clamp(0.0, 1.0)  # rounding can step past 1
    return Detection(torch.sigmoid(raw.subject_logit), box, top_p[:, 0])
