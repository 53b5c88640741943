"""Training loss of the position detector: box, coordinate probability and position category.

Positive cells (FCOS centre sampling): cells whose centre lies inside the true box and within
``radius`` cells of the box centre, plus the cell holding the box centre, so even a small product
has one. On positives: ``(1 - GIoU) + l1_weight * L1`` of the cell's box. Every cell: BCE of the
probability logit against ``IoU(cell box, true box)`` (detached) on positives and 0 elsewhere, so
the coordinate probability estimates the IoU of the box it comes with. Plus BCE of the subject logit.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from model_store.quality.position_model import RawPosition, cell_centres


def box_iou(a: torch.Tensor, b: torch.Tensor, generalised: bool = False) -> torch.Tensor:
    """IoU (or GIoU) of boxes on dim 1: a, b are [N, 4, ...] broadcastable, (x0, y0, x1, y1)."""
    ix = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    iy = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    union = (area_a + area_b - inter).clamp_min(1e-9)
    iou = inter / union
    if not generalised:
        return iou
    cw = torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0])
    ch = torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])
    hull = (cw * ch).clamp_min(1e-9)
    return iou - (hull - union) / hull


def positive_cells(target: torch.Tensor, h: int, w: int, radius: float = 1.5) -> torch.Tensor:
    """Bool [N, H, W] of cells trained to predict the box ``target`` [N, 4]."""
    cx, cy = cell_centres(h, w, target.device)
    t = target[:, :, None, None]
    inside = (cx > t[:, 0]) & (cx < t[:, 2]) & (cy > t[:, 1]) & (cy < t[:, 3])
    mx, my = (t[:, 0] + t[:, 2]) / 2, (t[:, 1] + t[:, 3]) / 2
    near = ((cx - mx).abs() <= radius / w) & ((cy - my).abs() <= radius / h)
    centre_x = (mx[:, 0, 0] * w).long().clamp(0, w - 1)
    centre_y = (my[:, 0, 0] * h).long().clamp(0, h - 1)
    pos = inside & near
    pos[torch.arange(target.shape[0], device=target.device), centre_y, centre_x] = True
    return pos


def position_loss(
    raw: RawPosition, box: torch.Tensor, is_subject: torch.Tensor, l1_weight: float = 5.0
) -> tuple[torch.Tensor, dict[str, float]]:
    n, _, h, w = raw.boxes.shape
    pos = positive_cells(box, h, w)
    target = box[:, :, None, None].expand_as(raw.boxes)
    giou = box_iou(raw.boxes, target, generalised=True)  # [N, H, W]
    l1 = (raw.boxes - target).abs().mean(dim=1)
    box_term = ((1.0 - giou) + l1_weight * l1)[pos].mean()
    with torch.no_grad():
        prob_target = torch.where(pos, box_iou(raw.boxes, target).clamp(0, 1), torch.zeros_like(giou))
    prob_term = F.binary_cross_entropy_with_logits(raw.prob_logit, prob_target)
    subject_term = F.binary_cross_entropy_with_logits(raw.subject_logit, is_subject)
    loss = box_term + 4.0 * prob_term + subject_term
    return loss, {
        "box": float(box_term.detach()),
        "prob": float(prob_term.detach()),
        "subject": float(subject_term.detach()),
    }
