"""Fusion's subset rule (teacher subset -> categories -> fine classes) for the default, claim 2 and claim 3
taxonomies, the teacher set restricted to a subset, the schedules, and every refusal as a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from model_store.distill.taxonomy import Taxonomy
from model_store.distill.teachers import TeacherSet
from model_store.embedding_loading import EMBEDDING_ARCH
from model_store.fusion import (
    FusionError,
    Schedule,
    all_subsets,
    next_version,
    parse_teacher_list,
    plan_fusion,
    prepare,
)
from model_store.fusion.schedule import FULL_RECIPE, recipe_config
from model_store.registry import DEFAULT_ROOT, ModelRegistry

CLOTHING, SHOES, BAGS = (0, 1, 2, 3, 4, 6), (5, 7, 9), (8,)
CLAIM2 = {"category_teachers": {"clothing": ["apparel"], "shoes": ["apparel"], "bags": ["bags"]}}
CLAIM3 = {"category_teachers": {"clothing": ["clothing_a", "clothing_b"], "shoes": ["shoes"], "bags": ["bags"]}}


def test_a_subset_covers_the_categories_of_its_teachers_in_taxonomy_order() -> None:
    plan = plan_fusion(Taxonomy(), ["shoes", "clothing", "shoes"])
    assert plan.teachers == ("clothing", "shoes") and plan.categories == ("clothing", "shoes")
    assert plan.classes == tuple(sorted(CLOTHING + SHOES))
    assert "bag" not in plan.class_names and len(plan.class_names) == 9
    assert plan.default_name == "fused-clothing-shoes"
    bags = plan_fusion(Taxonomy(), ["bags"])
    assert (bags.categories, bags.classes, bags.default_name) == (("bags",), BAGS, "fused-bags")


def test_every_non_empty_subset_once() -> None:
    plans = all_subsets(Taxonomy())
    assert len(plans) == 7 and len({p.default_name for p in plans}) == 7
    assert [len(p.teachers) for p in plans] == [1, 1, 1, 2, 2, 2, 3]
    assert plans[-1].default_name == "fused-clothing-shoes-bags" and plans[-1].classes == tuple(range(10))


def test_claim2_one_teacher_brings_every_category_it_serves() -> None:
    tax = Taxonomy.from_dict(CLAIM2)
    apparel = plan_fusion(tax, ["apparel"])
    assert apparel.categories == ("clothing", "shoes") and apparel.classes == tuple(sorted(CLOTHING + SHOES))
    assert plan_fusion(tax, ["bags"]).classes == BAGS
    assert len(all_subsets(tax)) == 3


def test_claim3_a_category_uses_those_of_its_teachers_in_the_subset() -> None:
    tax = Taxonomy.from_dict(CLAIM3)
    one = plan_fusion(tax, ["clothing_b", "bags"])
    assert one.categories == ("clothing", "bags") and one.classes == tuple(sorted(CLOTHING + BAGS))
    assert one.teachers_of(tax, "clothing") == ("clothing_b",)
    both = plan_fusion(tax, ["clothing_b", "clothing_a"])
    assert both.categories == ("clothing",) and both.teachers_of(tax, "clothing") == ("clothing_a", "clothing_b")
    assert both.default_name == "fused-clothing_a-clothing_b"
    assert len(all_subsets(tax)) == 15


class _Net(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        torch.nn.init.normal_(self.lin.weight, generator=torch.Generator().manual_seed(seed))
        torch.nn.init.zeros_(self.lin.bias)

    def forward_with_taps(self, x, taps):
        return self.lin(x[:, :, 0, 0]), [x for _ in taps]


def test_a_restricted_teacher_set_forms_vec_source_from_the_subset_only() -> None:
    tax = Taxonomy.from_dict(CLAIM3)
    only = ("clothing_b", "shoes")
    teachers = TeacherSet({"clothing_b": _Net(1), "shoes": _Net(2)}, tax, only=only)
    assert teachers.assignments([0, 5, 6]) == [("clothing_b",), ("shoes",), ("clothing_b",)]
    x = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(3))
    v, (pooled,) = teachers(x, teachers.assignments([0, 5]), (0,))
    alone = torch.nn.functional.normalize(_Net(1).lin(x[:1, :, 0, 0]), dim=1)
    assert torch.allclose(v[:1], alone, atol=1e-6)
    assert torch.allclose(pooled, x.mean(dim=(2, 3)), atol=1e-6)  # the absent clothing_a takes no share of the mean
    with pytest.raises(ValueError, match="none of the teachers"):
        teachers.assignments([8])  # bags: not in the subset
    with pytest.raises(ValueError, match="not given"):
        TeacherSet({"shoes": _Net(2)}, tax, only=only)
    with pytest.raises(ValueError, match="not in the taxonomy"):
        TeacherSet({"hats": _Net(2)}, tax, only=("hats",))


def test_unknown_and_empty_subsets_are_refused_with_the_known_teachers() -> None:
    with pytest.raises(FusionError, match=r"unknown teacher 'hats'; known: clothing, shoes, bags"):
        plan_fusion(Taxonomy(), ["shoes", "hats"])
    with pytest.raises(FusionError, match="subset is empty; choose one or more of: clothing, shoes, bags"):
        plan_fusion(Taxonomy(), parse_teacher_list(" , "))
    assert parse_teacher_list("clothing, shoes,") == ["clothing", "shoes"]


def test_the_short_schedule_runs_its_steps_and_the_full_one_is_the_served_students_recipe() -> None:
    short = recipe_config(Schedule(steps=120, batch_size=16), Taxonomy(), {"image_size": 64}, "cpu", 2)
    assert short.steps(short.samples_per_epoch) == 120 and short.batch_size == 16
    assert short.lr < FULL_RECIPE["lr"] and short.eval_every <= 120
    assert Schedule(steps=120, batch_size=16).describe("student@17") == (
        "short warm start from student@17: 120 steps of batch 16"
    )
    assert Schedule(full=True).describe(None) == "full recipe"
    served = json.loads((DEFAULT_ROOT / "student" / "17" / "manifest.json").read_text())["config"]
    full = recipe_config(Schedule(full=True), Taxonomy(), None, "cuda", 2).to_dict()
    assert {k: served[k] for k in FULL_RECIPE} == {k: full[k] for k in FULL_RECIPE}
    with pytest.raises(ValueError, match="positive"):
        Schedule(steps=0)


def _register(registry: ModelRegistry, ref: str, kind: str) -> None:
    name, version = ref.split("@")
    registry.save(name, version, {"w": torch.zeros(2)}, {"kind": kind, "architecture": EMBEDDING_ARCH})


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "registry")
    for ref in ("teacher-clothing@1", "teacher-clothing@2", "teacher-shoes@2", "teacher-bags@2"):
        _register(reg, ref, "teacher")
    _register(reg, "student@17", "student")
    return reg


def test_a_request_resolves_the_latest_teachers_the_init_and_the_next_free_version(registry: ModelRegistry) -> None:
    plan = plan_fusion(Taxonomy(), ["shoes", "clothing"])
    req = prepare(registry, Taxonomy(), plan, Schedule(), "student")
    assert (req.ref, req.teachers, req.init_ref) == (
        "fused-clothing-shoes@1",
        ("teacher-clothing@2", "teacher-shoes@2"),
        "student@17",
    )
    assert req.parents == ["teacher-clothing@2", "teacher-shoes@2", "student@17"]
    _register(registry, "fused-clothing-shoes@1", "student")
    assert next_version(registry, "fused-clothing-shoes") == "2"
    assert prepare(registry, Taxonomy(), plan, Schedule(), None).init_ref is None
    with pytest.raises(FusionError, match="fused-clothing-shoes@1 is already registered"):
        prepare(registry, Taxonomy(), plan, Schedule(), "student@17", version="1")


def test_unknown_init_and_unregistered_teachers_are_refused(registry: ModelRegistry) -> None:
    plan = plan_fusion(Taxonomy(), ["bags"])
    for bad in ("student@99", "teacher-bags@2", "no/such"):
        with pytest.raises(FusionError, match=f"unknown init model '{bad}'.*registered students: student@17"):
            prepare(registry, Taxonomy(), plan, Schedule(), bad)
    claim3 = Taxonomy.from_dict(CLAIM3)
    with pytest.raises(FusionError, match="clothing_a has no registered version.*registered teachers: shoes, bags"):
        prepare(registry, claim3, plan_fusion(claim3, ["clothing_a"]), Schedule(), "student@17")


def test_kept_norm_statistics_do_not_move_while_the_rest_trains() -> None:
    from model_store.distill.train_student import freeze_norm_stats

    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    before = net[1].running_mean.clone()
    freeze_norm_stats(net)
    net(torch.randn(8, 3, 2, 2) + 5.0).sum().backward()
    assert torch.equal(net[1].running_mean, before) and net[0].training
    assert net[1].weight.grad is not None  # scale and shift still learn
