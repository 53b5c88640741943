"""Mirror-averaged distillation targets (``--mirror-targets``): a view-invariant vec_source."""

from __future__ import annotations

import torch
from torch import nn

from model_store.distill.taxonomy import Taxonomy
from model_store.distill.teachers import TeacherSet
from model_store.distill.train_student import teacher_targets


class PixelNet(nn.Module):
    """A linear map of every pixel, so a mirror image gets another vector; taps are the input."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * 3 * 4, 5)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(5, 24, generator=torch.Generator().manual_seed(seed)))

    def forward_with_taps(self, x, taps):
        return self.lin(x.flatten(1)), [x for _ in taps]


def _teachers() -> TeacherSet:
    tax = Taxonomy()
    return TeacherSet({t: PixelNet(i) for i, t in enumerate(tax.teachers)}, tax).eval()


def _batch() -> tuple[torch.Tensor, list[tuple[str, ...]]]:
    x = torch.randn(9, 2, 3, 4, generator=torch.Generator().manual_seed(3))
    fine = [0, 5, 8, 1, 7, 8, 6, 9, 2]
    return x, _teachers().assignments(fine)


def test_mirror_targets_do_not_change_when_the_image_is_mirrored():
    teachers = _teachers()
    x, assigned = _batch()
    plain, _ = teacher_targets(teachers, x, assigned, [], mirror=False)
    plain_flipped, _ = teacher_targets(teachers, x.flip(-1), assigned, [], mirror=False)
    assert not torch.allclose(plain, plain_flipped, atol=1e-3)  # the teachers themselves are not invariant
    v, _ = teacher_targets(teachers, x, assigned, [], mirror=True)
    v_flipped, _ = teacher_targets(teachers, x.flip(-1), assigned, [], mirror=True)
    torch.testing.assert_close(v, v_flipped)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(9))


def test_without_mirror_the_targets_are_the_teachers_own():
    teachers = _teachers()
    x, assigned = _batch()
    v, pooled = teacher_targets(teachers, x, assigned, [3], mirror=False)
    v_ref, pooled_ref = teachers(x, assigned, [3])
    torch.testing.assert_close(v, v_ref)
    torch.testing.assert_close(pooled[0], pooled_ref[0])


def test_mirror_targets_of_a_symmetric_image_equal_the_plain_ones():
    teachers = _teachers()
    x, assigned = _batch()
    symmetric = x + x.flip(-1)
    v, pooled = teacher_targets(teachers, symmetric, assigned, [3], mirror=True)
    v_ref, pooled_ref = teacher_targets(teachers, symmetric, assigned, [3], mirror=False)
    torch.testing.assert_close(v, v_ref)
    torch.testing.assert_close(pooled[0], pooled_ref[0])
