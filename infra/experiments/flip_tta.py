"""Does averaging the embeddings of an image and its mirror image help the student?

``PYTHONPATH=. .venv/bin/python infra/experiments/flip_tta.py``: the student's k = 20 vote on the
validation queries, once as served and once with both query and gallery embedded as the sum of
the unit embeddings of the image and its mirror image. Two trunk passes per image, the same
compute as the routed system's router + teacher.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from infra.experiments.val_knn import load_for_validation, parse_with_registry


class FlipAverage(nn.Module):
    """Sum of the unit embeddings of an image and its left-right mirror."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x).float(), dim=1) + F.normalize(self.net(x.flip(-1)).float(), dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="student@3")
    args, registry = parse_with_registry(p)
    net, _, val = load_for_validation(registry, args.model)
    for style in val.sets:
        served = float(val.correct(net, style).float().mean())
        flipped = float(val.correct(FlipAverage(net).eval(), style).float().mean())
        print(f"{args.model} {style}: fine acc {served:.4f} as served, {flipped:.4f} flip-averaged", flush=True)


if __name__ == "__main__":
    main()
