"""Do other teachers raise the ceiling? Oracle-routed KNN of two teacher sets on validation queries.

``PYTHONPATH=. python infra/experiments/oracle_teachers.py --registry runs/exp-teach --candidate
teacher-clothing@3``: the reference set is the served student's teachers; the candidate set swaps
in the named versions. Each query is embedded by the teacher(s) of its true category and searches
that category's gallery (oracle routing), on the 6,000 validation queries of ``paired_bootstrap``;
the difference in fine accuracy is resampled over queries (paired bootstrap, 95 %). The served
student's row shows how far the student sits under the reference ceiling on the same queries.
"""

from __future__ import annotations

import argparse

import torch

from infra.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry
from model_store.distill.benchmark import by_category, embed_batches
from model_store.distill.loading import load_embedding_net, teacher_parents
from model_store.distill.paired import paired_interval
from model_store.distill.retrieval import knn_vote, similarities
from model_store.distill.teachers import TeacherSet
from model_store.embedding_models import SHIPPED_STUDENT_REF
from model_store.registry import ModelRegistry


def teacher_name(ref: str) -> str:
    return ref.split("@")[0].removeprefix("teacher-")


def oracle_correct(val: ValidationKnn, teachers: TeacherSet, style: str) -> torch.Tensor:
    """[queries] bool: the k = 20 vote of each query, embedded and searched within its true category."""
    gallery, queries = val.sets[style]
    g_cat, q_cat = val.to_cat[val.g_fine], val.to_cat[val.q_fine]

    emb_g, _ = embed_batches(by_category(teachers, g_cat), gallery, val.spec, 256)
    emb_q, _ = embed_batches(by_category(teachers, q_cat), queries, val.spec, 256)
    sims = similarities(emb_q, emb_g, q_cat[:, None] == g_cat[None, :])
    return knn_vote(sims, val.g_fine, len(val.to_cat), 20) == val.q_fine


def teacher_set(registry: ModelRegistry, refs: list[str], taxonomy) -> TeacherSet:
    return TeacherSet({teacher_name(r): load_embedding_net(registry, r)[0] for r in refs}, taxonomy).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--student", default=SHIPPED_STUDENT_REF, help="names the reference teachers (its parents)")
    p.add_argument("--candidate", nargs="+", required=True, help="teacher versions that replace the reference ones")
    args, registry = parse_with_registry(p)
    student, manifest = load_embedding_net(registry, args.student)
    _, cfg, val = load_for_validation(registry, args.student)
    reference = teacher_parents(manifest)
    swapped = {teacher_name(r): r for r in args.candidate}
    candidate = [swapped.get(teacher_name(r), r) for r in reference]
    ref_set, cand_set = (teacher_set(registry, refs, cfg.taxonomy) for refs in (reference, candidate))
    print("| system | " + " | ".join(f"{s}: acc, diff to reference [95 %]" for s in val.sets) + " |")
    print("|---|" + "---|" * len(val.sets))
    ref_ok = {s: oracle_correct(val, ref_set, s).numpy() for s in val.sets}
    print("| oracle-routed " + " ".join(reference) + " (reference) | "
          + " | ".join(f"{ref_ok[s].mean():.4f}" for s in val.sets) + " |", flush=True)  # fmt: skip
    for name, correct in (
        ("oracle-routed " + " ".join(candidate), lambda s: oracle_correct(val, cand_set, s)),
        (f"unified {args.student}", lambda s: val.correct(student, s)),
    ):
        cells = []
        for s in val.sets:
            ok = correct(s).numpy()
            mean, lo, hi = paired_interval(ref_ok[s], ok)
            cells.append(f"{ok.mean():.4f}, {mean * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}] pts")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
