"""Taxonomy as configuration and vec_source formation: claim 2 (one teacher, several categories)
and claim 3 (several teachers, one category)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from model_store.datasets import CLASS_NAMES
from model_store.distill.taxonomy import Taxonomy
from model_store.distill.teachers import TeacherSet

CLOTHING = [0, 1, 2, 3, 4, 6]
SHOES = [5, 7, 9]
BAGS = [8]


class FakeNet(nn.Module):
    """Stands in for an EmbeddingNet: a fixed linear map, one tapped 'block' (x itself)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(6, 4, generator=torch.Generator().manual_seed(seed)))
            self.lin.bias.zero_()

    def forward_with_taps(self, x, taps):
        return self.lin(x[:, :, 0, 0]), [x * (1 + len(taps))] if taps else []


def _x(n: int = 10) -> torch.Tensor:
    return torch.randn(n, 4, 2, 2, generator=torch.Generator().manual_seed(9))


def test_default_taxonomy():
    tax = Taxonomy()
    assert tax.categories == ("clothing", "shoes", "bags")
    assert tax.teachers == ("clothing", "shoes", "bags")
    assert tax.teacher_classes("clothing") == tuple(CLOTHING)
    assert tax.teacher_classes("shoes") == tuple(SHOES)
    assert tax.fine_to_category_index() == [0, 0, 0, 0, 0, 1, 0, 1, 2, 1]
    assert Taxonomy.from_dict(tax.to_dict()) == tax
    with pytest.raises(KeyError):
        tax.teacher_classes("hats")


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="without a teacher"):
        Taxonomy(category_teachers=(("clothing", ("c",)), ("shoes", ("s",))))
    with pytest.raises(ValueError, match="multi_teacher"):
        Taxonomy(multi_teacher="vote")


def test_claim2_one_teacher_serves_several_categories():
    tax = Taxonomy.from_dict({"category_teachers": {"clothing": ["apparel"], "shoes": ["apparel"], "bags": ["bags"]}})
    assert tax.teachers == ("apparel", "bags")
    assert tax.teacher_classes("apparel") == tuple(sorted(CLOTHING + SHOES))
    assert tax.categories_of_teacher("apparel") == ("clothing", "shoes")
    nets = {"apparel": FakeNet(1), "bags": FakeNet(2)}
    teachers = TeacherSet(nets, tax)
    fine = [0, 5, 8, 9, 3, 8, 7, 1, 2, 4]
    x = _x()
    vec, _ = teachers(x, teachers.assignments(fine))
    for i, f in enumerate(fine):
        name = "bags" if f == 8 else "apparel"
        expected = F.normalize(nets[name].lin(x[i : i + 1, :, 0, 0]), dim=1)[0]
        assert torch.allclose(vec[i], expected, atol=1e-6), (i, name)


def test_claim3_several_teachers_one_category_mean():
    tax = Taxonomy.from_dict({"category_teachers": {"clothing": ["c1", "c2"], "shoes": ["s"], "bags": ["b"]}})
    assert tax.teachers_of_fine(CLASS_NAMES.index("shirt")) == ("c1", "c2")
    assert tax.teacher_classes("c1") == tax.teacher_classes("c2") == tuple(CLOTHING)
    nets = {"c1": FakeNet(1), "c2": FakeNet(2), "s": FakeNet(3), "b": FakeNet(4)}
    teachers = TeacherSet(nets, tax)
    x = _x(4)
    fine = [0, 6, 5, 8]
    vec, pooled = teachers(x, teachers.assignments(fine), taps=[3])
    a = F.normalize(nets["c1"].lin(x[:2, :, 0, 0]), dim=1)
    b = F.normalize(nets["c2"].lin(x[:2, :, 0, 0]), dim=1)
    assert torch.allclose(vec[:2], F.normalize((a + b) / 2, dim=1), atol=1e-6)
    assert torch.allclose(vec[2], F.normalize(nets["s"].lin(x[2:3, :, 0, 0]), dim=1)[0], atol=1e-6)
    assert torch.allclose(vec.norm(dim=1), torch.ones(4))
    # pooled taps are averaged the same way (each fake tap is x * 2, pooled over space)
    assert torch.allclose(pooled[0], (x * 2).mean(dim=(2, 3)), atol=1e-6)


def test_claim3_random_rule_picks_one_teacher_persample_items():
    tax = Taxonomy.from_dict({
        "category_teachers": {"clothing": ["c1", "c2"], "shoes": ["s"], "bags": ["b"]}, "multi_teacher": "random",
    })  # fmt: skip
    nets = {"c1": FakeNet(1), "c2": FakeNet(2), "s": FakeNet(3), "b": FakeNet(4)}
    teachers = TeacherSet(nets, tax)
    fine = [0] * 40
    assigned = teachers.assignments(fine, np.random.default_rng(0))
    assert all(len(a) == 1 for a in assigned)
    assert {a[0] for a in assigned} == {"c1", "c2"}
    x = torch.randn(40, 4, 2, 2, generator=torch.Generator().manual_seed(3))
    vec, _ = teachers(x, assigned)
    for i, (name,) in enumerate(assigned):
        assert torch.allclose(vec[i], F.normalize(nets[name].lin(x[i : i + 1, :, 0, 0]), dim=1)[0], atol=1e-6)


class ShapeRecordingNet(FakeNet):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.batch_sizes: list[int] = []

    def forward_with_taps(self, x, taps):
        self.batch_sizes.append(x.shape[0])
        return super().forward_with_taps(x, taps)


def test_whole_batch_teachers_give_the_same_targets_at_one_shape():
    """On CUDA each teacher sees the whole batch (one input shape); the targets must not change."""
    tax = Taxonomy.from_dict({"category_teachers": {"clothing": ["c1", "c2"], "shoes": ["s"], "bags": ["b"]}})
    fine = [0, 6, 5, 8, 9, 1, 7, 2, 3, 4]
    x = _x()
    per_category = TeacherSet({t: ShapeRecordingNet(i) for i, t in enumerate(tax.teachers)}, tax)
    whole = TeacherSet({t: ShapeRecordingNet(i) for i, t in enumerate(tax.teachers)}, tax, whole_batch=True)
    vec_a, pooled_a = per_category(x, per_category.assignments(fine), taps=[3])
    vec_b, pooled_b = whole(x, whole.assignments(fine), taps=[3])
    assert torch.allclose(vec_a, vec_b, atol=1e-6)
    assert torch.allclose(pooled_a[0], pooled_b[0], atol=1e-6)
    assert {n: net.batch_sizes for n, net in per_category.nets.items()} == {"c1": [6], "c2": [6], "s": [3], "b": [1]}
    assert all(net.batch_sizes == [10] for net in whole.nets.values())


def test_routing_assignments_by_category():
    tax = Taxonomy.from_dict({"category_teachers": {"clothing": ["apparel"], "shoes": ["apparel"], "bags": ["b"]}})
    teachers = TeacherSet({"apparel": FakeNet(1), "b": FakeNet(2)}, tax)
    assert teachers.assignments_for_categories([0, 1, 2]) == [("apparel",), ("apparel",), ("b",)]
    with pytest.raises(ValueError, match="not given"):
        TeacherSet({"apparel": FakeNet(1)}, tax)


def test_benchmark_selection_queries_are_never_trained_on():
    """``--queries-from val`` draws queries only from items no recipe model trains on."""
    from model_store.distill.benchmark import sample_items
    from model_store.distill.config import RecipeConfig, data_split, held_out_split

    cfg = RecipeConfig()
    pool, held_out = held_out_split(cfg)
    assert len(np.intersect1d(pool, held_out)) == 0 and len(pool) + len(held_out) == 60_000
    train_pool, val = data_split(cfg)
    np.testing.assert_array_equal(train_pool, pool)
    assert set(val) <= set(held_out)
    queries = sample_items(held_out, 2_000, 1)
    assert len(np.unique(queries)) == 2_000 and set(queries) <= set(held_out)
    np.testing.assert_array_equal(sample_items(held_out, 10**6, 1), held_out)


def test_benchmark_test_sampling_is_unchanged():
    """The published tables were drawn with ``choice(60_000, n)``; the sampler must give the same items."""
    from model_store.distill.benchmark import sample_items

    old = np.sort(np.random.default_rng(0).choice(60_000, 10_000, replace=False))
    np.testing.assert_array_equal(sample_items(np.arange(60_000), 10_000, 0), old)


def test_class_weights_skew_sampling_and_survive_the_manifest():
    from model_store.distill.config import RecipeConfig, item_weights

    labels = np.array([6, 6, 0, 8])
    assert item_weights(RecipeConfig(), labels) is None  # default: uniform, the shipped draws unchanged
    cfg = RecipeConfig(class_weights=(1.0,) * 6 + (3.0,) + (1.0,) * 3)
    np.testing.assert_array_equal(item_weights(cfg, labels), [3.0, 3.0, 1.0, 1.0])
    assert RecipeConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="one positive weight per fine class"):
        item_weights(RecipeConfig(class_weights=(1.0, 2.0)), labels)
    with pytest.raises(ValueError, match="one positive weight per fine class"):
        item_weights(RecipeConfig(class_weights=(0.0,) * 10), labels)
