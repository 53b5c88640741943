"""Taxonomy as configuration: fine class -> commodity category -> teacher(s).

Both directions of seed 000's claims are plain data here:
- claim 2, one teacher serves several categories: ``{"clothing": ["apparel"], "shoes": ["apparel"]}``;
- claim 3, several teachers serve one category: ``{"clothing": ["clothing_a", "clothing_b"]}``.

A teacher is trained on the fine classes of every category it serves, plus one "other" class.
When a category has several teachers, ``multi_teacher`` says how its ``vec_source`` is formed:
- ``"mean"`` (default): the L2-normalised mean of the teachers' L2-normalised vectors (and, for
  CORAL, the mean of their pooled intermediate features);
- ``"random"``: each sample draws one of its category's teachers uniformly (per training step).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from model_store.vocabulary import CATEGORIES, CLASS_NAMES, DEFAULT_TAXONOMY

MultiTeacher = Literal["mean", "random"]
DEFAULT_TEACHERS: dict[str, tuple[str, ...]] = {c: (c,) for c in CATEGORIES}


@dataclass(frozen=True)
class Taxonomy:
    fine_to_category: tuple[tuple[str, str], ...] = tuple(DEFAULT_TAXONOMY.items())
    category_teachers: tuple[tuple[str, tuple[str, ...]], ...] = tuple(DEFAULT_TEACHERS.items())
    multi_teacher: MultiTeacher = "mean"
    class_names: tuple[str, ...] = CLASS_NAMES
    category_order: tuple[str, ...] = CATEGORIES  # fixes category indices (router outputs, coarse labels)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fine_to_category", tuple(dict(self.fine_to_category).items()))
        teachers = tuple((c, tuple(ts)) for c, ts in dict(self.category_teachers).items())
        object.__setattr__(self, "category_teachers", teachers)
        object.__setattr__(self, "category_order", tuple(self.category_order))
        used = {c for _, c in self.fine_to_category}
        if set(self.category_order) != used:
            order = [c for c in self.category_order if c in used]
            object.__setattr__(self, "category_order", tuple(order + sorted(used - set(order))))
        missing = set(self.class_names) - {f for f, _ in self.fine_to_category}
        if missing:
            raise ValueError(f"fine classes without a category: {sorted(missing)}")
        unserved = set(self.categories) - {c for c, _ in self.category_teachers}
        if unserved:
            raise ValueError(f"categories without a teacher: {sorted(unserved)}")
        if any(not ts for _, ts in self.category_teachers):
            raise ValueError("every category needs at least one teacher")
        if self.multi_teacher not in ("mean", "random"):
            raise ValueError(f"multi_teacher must be 'mean' or 'random', got {self.multi_teacher!r}")

    # -- lookups -----------------------------------------------------------------------------
    @property
    def categories(self) -> tuple[str, ...]:
        return self.category_order

    @property
    def teachers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for _, ts in self.category_teachers for t in ts))

    def category_of(self, fine: int) -> str:
        return dict(self.fine_to_category)[self.class_names[fine]]

    def category_index(self, fine: int) -> int:
        return self.categories.index(self.category_of(fine))

    def teachers_of_category(self, category: str) -> tuple[str, ...]:
        return dict(self.category_teachers)[category]

    def teachers_of_fine(self, fine: int) -> tuple[str, ...]:
        return self.teachers_of_category(self.category_of(fine))

    def categories_of_teacher(self, teacher: str) -> tuple[str, ...]:
        return tuple(c for c, ts in self.category_teachers if teacher in ts)

    def teacher_classes(self, teacher: str) -> tuple[int, ...]:
        """Fine class indices a teacher discriminates (its label space is these + "other")."""
        served = set(self.categories_of_teacher(teacher))
        if not served:
            raise KeyError(f"unknown teacher {teacher!r}; known: {', '.join(self.teachers)}")
        return tuple(i for i in range(len(self.class_names)) if self.category_of(i) in served)

    def fine_to_category_index(self) -> list[int]:
        return [self.category_index(i) for i in range(len(self.class_names))]

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "fine_to_category": dict(self.fine_to_category),
            "category_teachers": {c: list(ts) for c, ts in self.category_teachers},
            "multi_teacher": self.multi_teacher,
            "class_names": list(self.class_names),
            "category_order": list(self.category_order),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        return cls(
            fine_to_category=tuple(dict(data.get("fine_to_category", DEFAULT_TAXONOMY)).items()),
            category_teachers=tuple(
                (c, tuple(ts)) for c, ts in dict(data.get("category_teachers", DEFAULT_TEACHERS)).items()
            ),
            multi_teacher=data.get("multi_teacher", "mean"),
            class_names=tuple(data.get("class_names", CLASS_NAMES)),
            category_order=tuple(data.get("category_order", CATEGORIES)),
        )

    @classmethod
    def load(cls, path: Path | None) -> Taxonomy:
        return cls() if path is None else cls.from_dict(json.loads(Path(path).read_text()))


def teachers_per_sample(taxonomy: Taxonomy, fine: Sequence[int]) -> list[tuple[str, ...]]:
    """For each fine label, the teachers whose vectors form its ``vec_source``."""
    return [taxonomy.teachers_of_fine(int(f)) for f in fine]
