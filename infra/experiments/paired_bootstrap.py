"""Is a student variant really better or worse than the reference, or is it noise of the query draw?

``PYTHONPATH=. python infra/experiments/paired_bootstrap.py --registry runs/exp-reg --reference
student@3 --candidates student@11 student@12`` (the reference defaults to the served student):
every model answers the same 6,000 validation queries (the items and renderings of ``benchmark
--queries-from val --queries 6000``); the difference in fine accuracy to the reference is
resampled over queries (paired bootstrap), and its 95 % interval is printed.
An interval that contains 0 means the validation queries cannot tell the two apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from torch import nn

from infra.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry
from model_store.distill.loading import load_embedding_net
from model_store.distill.paired import paired_interval
from model_store.embedding_models import SHIPPED_STUDENT_REF


def print_comparison(
    val: ValidationKnn, reference: str, ref_net: nn.Module, candidates: Iterable[tuple[str, nn.Module]]
) -> None:
    """A markdown table: each candidate's accuracy and its paired difference to the reference."""
    styles = list(val.sets)
    ref = {s: val.correct(ref_net, s).numpy() for s in styles}
    print("| candidate | " + " | ".join(f"{s}: acc, diff [95 % interval]" for s in styles) + " |")
    print("|---|" + "---|" * len(styles))
    print(f"| {reference} | " + " | ".join(f"{ref[s].mean():.4f}" for s in styles) + " |", flush=True)
    for name, net in candidates:
        cells = []
        for s in styles:
            ok = val.correct(net, s).numpy()
            mean, lo, hi = paired_interval(ref[s], ok)
            cells.append(f"{ok.mean():.4f}, {mean * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}] pts")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reference", default=SHIPPED_STUDENT_REF, help="the model every candidate is compared with")
    p.add_argument("--candidates", nargs="+", required=True)
    args, registry = parse_with_registry(p)
    ref_net, _, val = load_for_validation(registry, args.reference)
    loaded = ((cand, load_embedding_net(registry, cand)[0]) for cand in args.candidates)  # one net at a time
    print_comparison(val, args.reference, ref_net, loaded)


if __name__ == "__main__":
    main()
