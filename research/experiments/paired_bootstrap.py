"""Is a student variant really better or worse than the reference, or is it noise of the query draw?

``PYTHONPATH=. python research/experiments/paired_bootstrap.py --registry runs/exp-reg --reference
student@3 --candidates student@11 student@12`` (the reference defaults to the served student):
every model answers the same 6,000 validation queries (the items and renderings of ``benchmark
--queries-from val --queries 6000``); the difference in fine accuracy to the reference is
resampled over queries (paired bootstrap), and its 95 % interval is printed.
An interval that contains 0 means the validation queries cannot tell the two apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

import numpy as np
from torch import nn

from model_store.distill.paired import paired_interval
from model_store.embedding_loading import load_embedding_net
from model_store.embedding_models import SHIPPED_STUDENT_REF
from research.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry


def paired_cell(reference: np.ndarray, candidate: np.ndarray) -> str:
    """'acc, diff [95 % interval] pts' of per-query correctness, paired with the reference's."""
    mean, low, high = paired_interval(reference, candidate)
    return f"{candidate.mean():.4f}, {mean * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}] pts"


def print_paired_table(
    reference: str, ref_ok: dict[str, np.ndarray], rows: Iterable[tuple[str, Callable[[str], np.ndarray]]]
) -> None:
    """A markdown table: the reference's accuracy per style, then each row's paired difference to it."""
    styles = list(ref_ok)
    print("| candidate | " + " | ".join(f"{s}: acc, diff [95 % interval]" for s in styles) + " |")
    print("|---|" + "---|" * len(styles))
    print(f"| {reference} | " + " | ".join(f"{ref_ok[s].mean():.4f}" for s in styles) + " |", flush=True)
    for name, correct in rows:
        print(f"| {name} | " + " | ".join(paired_cell(ref_ok[s], correct(s)) for s in styles) + " |", flush=True)


def print_comparison(
    val: ValidationKnn, reference: str, ref_net: nn.Module, candidates: Iterable[tuple[str, nn.Module]]
) -> None:
    """Each candidate net against the reference net on the validation queries of both styles."""
    ref_ok = {s: val.correct(ref_net, s).numpy() for s in val.sets}
    rows = ((name, lambda s, n=net: val.correct(n, s).numpy()) for name, net in candidates)  # one net at a time
    print_paired_table(reference, ref_ok, rows)


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
