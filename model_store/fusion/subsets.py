"""Which categories and fine classes a subset of the teachers covers (seed 000 embodiment 5, [0125]-[0140]).

The teacher sub-models can be "arbitrarily combined" into candidate students; this module is the one
rule that turns a chosen subset into what the candidate is distilled on, for any taxonomy:

- a category is included when the subset holds at least one of its teachers;
- a category with several teachers (claim 3) is served by those of them that are in the subset,
  combined by the taxonomy's ``multi_teacher`` rule among them; the others are not loaded;
- a teacher that serves several categories (claim 2) brings all of them;
- the candidate is distilled, and validated, on the items whose fine class belongs to an included
  category, and on no other item: a candidate of some teachers is a student of their categories.

Teachers and categories are kept in the taxonomy's order whatever order they were chosen in, so
one subset has one default name: ``fused-<teachers joined by '-'>`` (``fused-clothing-shoes``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from model_store.distill.taxonomy import Taxonomy

NAME_PREFIX = "fused-"


class FusionError(ValueError):
    """A fusion request that cannot run; its message is one line for the person who asked."""


@dataclass(frozen=True)
class FusionPlan:
    """A teacher subset and what it covers, in taxonomy order."""

    teachers: tuple[str, ...]  # taxonomy names (``clothing``), not registry refs
    categories: tuple[str, ...]
    classes: tuple[int, ...]  # fine class indices of the included categories
    class_names: tuple[str, ...]

    @property
    def default_name(self) -> str:
        return NAME_PREFIX + "-".join(self.teachers)

    def teachers_of(self, taxonomy: Taxonomy, category: str) -> tuple[str, ...]:
        """The teachers of the subset that form ``category``'s source vector."""
        return tuple(t for t in taxonomy.teachers_of_category(category) if t in self.teachers)


def parse_teacher_list(text: str) -> list[str]:
    """``"clothing, shoes"`` -> ``["clothing", "shoes"]`` (empty items dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def plan_fusion(taxonomy: Taxonomy, chosen: Iterable[str]) -> FusionPlan:
    """The plan for ``chosen`` teachers; an unknown teacher or an empty subset is a ``FusionError``."""
    wanted = list(dict.fromkeys(chosen))
    if not wanted:
        raise FusionError(f"the teacher subset is empty; choose one or more of: {', '.join(taxonomy.teachers)}")
    unknown = [t for t in wanted if t not in taxonomy.teachers]
    if unknown:
        raise FusionError(
            f"unknown teacher{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(taxonomy.teachers)}"
        )
    teachers = tuple(t for t in taxonomy.teachers if t in wanted)
    categories = tuple(c for c in taxonomy.categories if set(taxonomy.teachers_of_category(c)) & set(teachers))
    classes = tuple(i for i in range(len(taxonomy.class_names)) if taxonomy.category_of(i) in categories)
    return FusionPlan(teachers, categories, classes, tuple(taxonomy.class_names[i] for i in classes))


def all_subsets(taxonomy: Taxonomy) -> list[FusionPlan]:
    """One plan per non-empty subset of the taxonomy's teachers: singles first, then pairs, ..., all."""
    names = taxonomy.teachers
    combos = (combo for k in range(1, len(names) + 1) for combo in itertools.combinations(names, k))
    return [plan_fusion(taxonomy, combo) for combo in combos]
