"""Does stochastic weight averaging on top of student@3 help? Same loss (L2 + gamma * CORAL).

``PYTHONPATH=. python research/experiments/swa_student.py --steps 1000 --lr 2e-4``: AdamW at a
constant lr from student@3, the weights averaged every 25 steps (``torch.optim.swa_utils``), BN
statistics re-estimated for the average; the last and the averaged weights are both evaluated.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from model_store.distill.config import RecipeConfig, held_out_split
from model_store.distill.coral import CoralProjector
from model_store.distill.data import ImageSource, MixedBatches
from model_store.distill.train_student import distillation_loss, load_teacher_set, teacher_refs
from model_store.embedding_loading import load_embedding_net
from research.experiments.precise_bn import recalibrate_bn
from research.experiments.val_knn import ValidationKnn, parse_with_registry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-4)
    args, registry = parse_with_registry(p)
    torch.manual_seed(0)
    net, manifest = load_embedding_net(registry, "student@3")
    cfg = RecipeConfig.from_dict(manifest.config)
    taps = list(cfg.coral_layers)
    teachers = load_teacher_set(registry, cfg, teacher_refs(cfg.taxonomy, "2").values(), "cpu")
    projector = CoralProjector([net.backbone.block_channels(i) for i in taps], cfg.coral_dim)
    groups = [
        {"params": net.backbone.parameters(), "lr": args.lr},
        {"params": net.heads().parameters(), "lr": 3 * args.lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    batches = MixedBatches(ImageSource("train", cfg.preprocess), held_out_split(cfg)[0], 64, 777, cfg.plain_fraction)
    averaged = AveragedModel(net)
    net.train()
    for step in range(args.steps):
        x, fine = batches(step)
        loss, terms = distillation_loss(net, teachers, projector, x, fine, taps, cfg.gamma,
                                        np.random.default_rng((0, step, 11)))  # fmt: skip
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if (step + 1) % 25 == 0:
            averaged.update_parameters(net)
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: l2 {terms['l2']:.4f}", flush=True)
    val = ValidationKnn(cfg)
    val.report(net, "last weights")
    recalibrate_bn(averaged.module, batches, 200, first_step=10**6)
    val.report(averaged.module, f"average of {int(averaged.n_averaged)} snapshots")


if __name__ == "__main__":
    main()
