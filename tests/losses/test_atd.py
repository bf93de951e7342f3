"""ATD: the AT loss by hand, a numpy re-derivation of both teacher branches, the fix switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aclnet_kd.losses import ATD, attention_map, attention_transfer_loss


def softmax_numpy(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def at_numpy(f: np.ndarray) -> np.ndarray:
    q = (f ** 2).mean(axis=1).reshape(len(f), -1)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def project_numpy(x: np.ndarray, key: np.ndarray, back: np.ndarray, softmax_axis: int) -> np.ndarray:
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w).astype(np.float64)
    z = np.einsum("kc,bcl->bkl", key, flat)
    attn = softmax_numpy(z, softmax_axis)
    attn = attn / (1e-9 + attn.sum(axis=1, keepdims=True))
    return np.einsum("ck,bkl->bcl", back, z * attn).reshape(b, c, h, w) + x


def atd_numpy(student: np.ndarray, teacher: np.ndarray, module: ATD) -> float:
    w = {k: v.detach().numpy()[:, :, 0] for k, v in module.named_parameters()}
    y_s = project_numpy(student, w["student_key.weight"], w["student_back.weight"], softmax_axis=2)
    if module.teacher_fix:
        y_t = project_numpy(teacher, w["teacher_key.weight"], w["teacher_back.weight"], softmax_axis=2)
    else:  # the release: softmax over the k units, and the student's back-projection
        y_t = project_numpy(teacher, w["teacher_key.weight"], w["student_back.weight"], softmax_axis=1)
    return float(((at_numpy(y_s) - at_numpy(y_t)) ** 2).mean())


def test_attention_map_and_at_loss_hand_computed():
    # all energy at one position -> one-hot map; uniform energy over 4 positions -> 0.5 each
    peaked = torch.zeros(1, 3, 2, 2)
    peaked[0, :, 0, 0] = 2.0
    uniform = torch.ones(1, 3, 2, 2)
    assert attention_map(peaked)[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])
    assert attention_map(uniform)[0].tolist() == pytest.approx([0.5] * 4)
    # (1 - 0.5)^2 + 3 * 0.5^2 = 1.0, mean over 4 positions
    assert attention_transfer_loss(peaked, uniform).item() == pytest.approx(0.25)


@pytest.mark.parametrize("teacher_fix", [False, True])
def test_matches_numpy_rederivation(teacher_fix):
    torch.manual_seed(0)
    module = ATD(channels=5, units=4, teacher_fix=teacher_fix)
    student, teacher = torch.randn(3, 5, 3, 4), torch.randn(3, 5, 3, 4)
    got = module(student, teacher).item()
    assert got == pytest.approx(atd_numpy(student.numpy(), teacher.numpy(), module), rel=1e-5)


def test_teacher_fix_switch_changes_the_teacher_branch():
    release, fixed = ATD(channels=6, units=4), ATD(channels=6, units=4, teacher_fix=True)
    names = lambda m: {n for n, _ in m.named_parameters()}  # noqa: E731
    assert "teacher_back.weight" not in names(release)  # built only when used
    assert names(fixed) - names(release) == {"teacher_back.weight"}
    # Same weights on both sides and the same features: the fixed teacher branch is the
    # student's operator, so the loss vanishes; the release's (softmax over the units) does not.
    with torch.no_grad():
        for m in (release, fixed):
            m.teacher_key.weight.copy_(m.student_key.weight)
        fixed.teacher_back.weight.copy_(fixed.student_back.weight)
    x = torch.randn(2, 6, 4, 4)
    assert fixed(x, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert release(x, x.clone()).item() > 1e-6
    # A zero student feature gives the student's back-projection no gradient from the student
    # branch (its input Z * A is 0): any gradient it gets comes from the teacher branch, which
    # in the release back-projects with the student's weights.
    teacher = torch.randn(2, 6, 4, 4)
    for module, expect_grad in ((release, True), (fixed, False)):
        module.zero_grad()
        module(torch.zeros(2, 6, 4, 4), teacher).backward()
        assert (module.student_back.weight.grad.abs().sum().item() > 0) == expect_grad


def test_each_level_is_at_most_two_over_positions():
    # Attention maps are non-negative unit vectors over the H*W positions, so sum (Q_S - Q_T)^2 <= 2 and the
    # mean over positions <= 2 / (H*W): 0.0415 summed over the decoder levels at 256 px (64, 32, 16, 8 px).
    torch.manual_seed(0)
    for h, w in ((8, 8), (4, 6)):
        module = ATD(channels=8)
        for scale in (1.0, 100.0):
            student, teacher = scale * torch.randn(3, 8, h, w), torch.randn(3, 8, h, w)
            assert module(student, teacher).item() <= 2 / (h * w)
        # the bound is reached by attention on disjoint positions
        left, right = torch.zeros(2, 8, h, w), torch.zeros(2, 8, h, w)
        left[..., : w // 2], right[..., w // 2:] = 1.0, 1.0
        assert attention_transfer_loss(left, right).item() == pytest.approx(2 / (h * w), rel=1e-5)
    assert sum(2 / (s * s) for s in (64, 32, 16, 8)) == pytest.approx(0.0415, abs=5e-5)
