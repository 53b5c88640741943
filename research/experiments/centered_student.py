"""Does centring the student's embeddings help its cosine KNN?

``PYTHONPATH=. python research/experiments/centered_student.py``: the mean embedding of the 10,000
plain pool items (train split) is subtracted inside the student, by lowering its projection's
bias, so the served model keeps its structure and bytes. Cosine similarity of centred vectors
stops rewarding the direction all items share. Scored on the validation queries of both styles,
paired with the student as served (bootstrap, 95 %).
"""

from __future__ import annotations

import argparse
import copy

import torch

from model_store.distill.benchmark import embed_batches
from model_store.embedding_models import SHIPPED_STUDENT_REF
from model_store.embedding_nets import EmbeddingNet
from research.experiments.paired_bootstrap import print_comparison
from research.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry


def centred(net: EmbeddingNet, val: ValidationKnn) -> EmbeddingNet:
    """A copy of ``net`` whose outputs have zero mean over the plain gallery items."""
    out = copy.deepcopy(net).eval()
    gallery, _ = val.sets["plain"]
    emb, _ = embed_batches(lambda x, s: out(x), gallery, val.spec, 256)
    with torch.no_grad():
        out.proj.bias -= emb.mean(dim=0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=SHIPPED_STUDENT_REF)
    args, registry = parse_with_registry(p)
    net, _, val = load_for_validation(registry, args.model)
    print_comparison(val, args.model, net, [(f"{args.model}, centred on the plain pool mean", centred(net, val))])


if __name__ == "__main__":
    main()
