"""Pinning one teacher's version: a retrained teacher joins the older ones without renumbering them."""

from __future__ import annotations

import pytest

from model_store.distill.taxonomy import Taxonomy
from model_store.distill.train import parse_pins
from model_store.distill.train_student import teacher_refs


def test_one_pinned_teacher_the_rest_at_the_version() -> None:
    refs = teacher_refs(Taxonomy(), "2", {"clothing": "3"})
    assert refs == {"clothing": "teacher-clothing@3", "shoes": "teacher-shoes@2", "bags": "teacher-bags@2"}
    assert teacher_refs(Taxonomy(), "2") == {t: f"teacher-{t}@2" for t in Taxonomy().teachers}


def test_a_pin_for_a_teacher_outside_the_taxonomy_fails_clearly() -> None:
    apparel = Taxonomy.from_dict(
        {"category_teachers": {"clothing": ["apparel"], "shoes": ["apparel"], "bags": ["bags"]}}
    )
    with pytest.raises(ValueError, match=r"\['clothing'\] are not in the taxonomy"):
        teacher_refs(apparel, "1", {"clothing": "3"})


def test_pins_parse_from_the_command_line() -> None:
    assert parse_pins(["clothing=3", "bags=1"]) == {"clothing": "3", "bags": "1"}
    assert parse_pins([]) == {}
    for bad in ("clothing", "=3", "clothing="):
        with pytest.raises(SystemExit, match="TEACHER=VERSION"):
            parse_pins([bad])
