"""Do other teachers raise the ceiling? Oracle-routed KNN of two teacher sets on validation queries.

``PYTHONPATH=. python research/experiments/oracle_teachers.py --registry runs/exp-teach --candidate
teacher-clothing@3``: the reference set is the served student's teachers; the candidate set swaps
in the named versions. Each query is embedded by the teacher(s) of its true category and searches
that category's gallery (oracle routing), on the 6,000 validation queries of ``paired_bootstrap``;
the difference in fine accuracy is resampled over queries (paired bootstrap, 95 %). The served
student's row shows how far the student sits under the reference ceiling on the same queries.
"""

from __future__ import annotations

import argparse

import torch

from model_store.distill.benchmark import by_category, embed_batches
from model_store.distill.teachers import TeacherSet
from model_store.embedding_loading import load_teacher_nets, teacher_name, teacher_parents
from model_store.embedding_models import SHIPPED_STUDENT_REF
from research.experiments.paired_bootstrap import print_paired_table
from research.experiments.val_knn import ValidationKnn, load_for_validation, parse_with_registry


def oracle_correct(val: ValidationKnn, teachers: TeacherSet, style: str) -> torch.Tensor:
    """[queries] bool: the k = 20 vote of each query, embedded and searched within its true category."""
    gallery, queries = val.sets[style]
    g_cat, q_cat = val.to_cat[val.g_fine], val.to_cat[val.q_fine]
    emb_g, _ = embed_batches(by_category(teachers, g_cat), gallery, val.spec, 256)
    emb_q, _ = embed_batches(by_category(teachers, q_cat), queries, val.spec, 256)
    return val.vote_correct(emb_q, emb_g, q_cat[:, None] == g_cat[None, :])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--student", default=SHIPPED_STUDENT_REF, help="names the reference teachers (its parents)")
    p.add_argument("--candidate", nargs="+", required=True, help="teacher versions that replace the reference ones")
    args, registry = parse_with_registry(p)
    student, cfg, val = load_for_validation(registry, args.student)
    reference = teacher_parents(registry.load_manifest(args.student))
    swapped = {teacher_name(r): r for r in args.candidate}
    candidate = [swapped.get(teacher_name(r), r) for r in reference]
    ref_set, cand_set = (TeacherSet(load_teacher_nets(registry, refs), cfg.taxonomy).eval()
                         for refs in (reference, candidate))  # fmt: skip
    ref_ok = {s: oracle_correct(val, ref_set, s).numpy() for s in val.sets}
    print_paired_table(f"oracle-routed {' '.join(reference)} (reference)", ref_ok, [
        (f"oracle-routed {' '.join(candidate)}", lambda s: oracle_correct(val, cand_set, s).numpy()),
        (f"unified {args.student}", lambda s: val.correct(student, s).numpy()),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
