"""Does re-estimating BatchNorm statistics over many training batches (precise BN) help the student?

``PYTHONPATH=. python research/experiments/precise_bn.py --batches 100 400``: student@3 as shipped,
then with its BN running statistics re-estimated (cumulative mean) over N training batches.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from model_store.distill.config import held_out_split
from model_store.distill.data import ImageSource, MixedBatches
from research.experiments.val_knn import load_for_validation, parse_with_registry


def recalibrate_bn(net: nn.Module, batches: MixedBatches, n: int, first_step: int = 0) -> None:
    """Re-estimate every BN layer's running statistics as plain means over n training batches."""
    with torch.no_grad():
        update_bn((batches(step) for step in range(first_step, first_step + n)), net)
    net.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="student@3")
    p.add_argument("--batches", type=int, nargs="+", default=[100, 400])
    args, registry = parse_with_registry(p)
    net, cfg, val = load_for_validation(registry, args.model)
    val.report(net, f"{args.model} as shipped")
    batches = MixedBatches(ImageSource("train", cfg.preprocess), held_out_split(cfg)[0], 64, 12345, cfg.plain_fraction)
    for n in args.batches:
        recalibrate_bn(net, batches, n)
        val.report(net, f"{args.model}, BN re-estimated on {n} batches")


if __name__ == "__main__":
    main()
