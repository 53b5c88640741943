"""Does averaging the embeddings of an image and its mirror image help the student?

``PYTHONPATH=. python research/experiments/flip_tta.py --model student@3``: the student's k = 20 vote
on the validation queries as served, against three placements of the mirror average (the sum of
the unit embeddings of the image and its mirror image): gallery and queries (two trunk passes per
query, the routed system's compute of router + teacher), gallery only (paid once per catalog item,
free at query time) and queries only. Each is paired with the served vote on the same queries
(bootstrap, 95 %). The model defaults to the served student.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model_store.distill.benchmark import embed_batches
from model_store.embedding_models import SHIPPED_STUDENT_REF
from research.experiments.paired_bootstrap import paired_cell
from research.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry

PLACEMENTS = (("gallery and queries", True, True), ("gallery only", True, False), ("queries only", False, True))


class FlipAverage(nn.Module):
    """Sum of the unit embeddings of an image and its left-right mirror."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x).float(), dim=1) + F.normalize(self.net(x.flip(-1)).float(), dim=1)


def placement_votes(val: ValidationKnn, net: nn.Module, style: str) -> dict[str, np.ndarray]:
    """Whether each query's vote is right: as served, and for each placement of the mirror average."""
    gallery, queries = val.sets[style]
    models = {False: net.eval(), True: FlipAverage(net).eval()}
    emb_g = {f: embed_batches(lambda x, s, m=m: m(x), gallery, val.spec, 256)[0] for f, m in models.items()}
    emb_q = {f: embed_batches(lambda x, s, m=m: m(x), queries, val.spec, 256)[0] for f, m in models.items()}

    def correct(flip_gallery: bool, flip_queries: bool) -> np.ndarray:
        return val.vote_correct(emb_q[flip_queries], emb_g[flip_gallery]).numpy()

    return {"served": correct(False, False)} | {name: correct(g, q) for name, g, q in PLACEMENTS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=SHIPPED_STUDENT_REF)
    args, registry = parse_with_registry(p)
    net, _, val = load_for_validation(registry, args.model)
    for style in val.sets:
        votes = placement_votes(val, net, style)
        served = votes.pop("served")
        print(f"{args.model} {style}: fine acc {served.mean():.4f} as served", flush=True)
        for name, ok in votes.items():
            print(f"  mirror-averaged, {name}: {paired_cell(served, ok)}", flush=True)


if __name__ == "__main__":
    main()
