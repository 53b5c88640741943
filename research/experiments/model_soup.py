"""Does a weight average of same-shape students (a "model soup") beat the base model?

``PYTHONPATH=. python research/experiments/model_soup.py --registry runs/exp-reg --base student@3
--ingredients student@3 student@4 ...``: every ingredient must have the base's architecture (all
of ``student_variants.sh``'s versions except the residual head and the 96 px trunk). The soup is
the uniform mean of their parameters and BN statistics; it is scored on the validation queries,
each query also scored for the base (default: the served student), and the difference resampled
(paired bootstrap, 95 %).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from model_store.embedding_loading import load_embedding_net
from model_store.embedding_models import SHIPPED_STUDENT_REF
from research.experiments.paired_bootstrap import print_comparison
from research.experiments.val_knn import load_for_validation, parse_with_registry


def uniform_soup(nets: list[nn.Module]) -> nn.Module:
    """The mean of every floating-point tensor of the state; integer buffers come from the first net."""
    states = [n.state_dict() for n in nets]
    mean = {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    nets[0].load_state_dict(mean)
    return nets[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--base", default=SHIPPED_STUDENT_REF, help="the model the soup is compared with")
    p.add_argument("--ingredients", nargs="+", required=True)
    args, registry = parse_with_registry(p)
    base, _, val = load_for_validation(registry, args.base)
    soup = uniform_soup([load_embedding_net(registry, ref)[0] for ref in args.ingredients])
    print_comparison(val, args.base, base, [(f"soup of {' '.join(args.ingredients)}", soup)])


if __name__ == "__main__":
    main()
