"""CIRKD pixel-to-region: hand-derived values, the memory bank (enqueue, wrap-around, checkpoint, resume),
a float64 re-derivation, gradients, zero at student == teacher (gradcheck, zero features and bf16: the
contract every registered term keeps, test_contract.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aclnet_kd.losses.cirkd import PixelRegionDistillation, region_similarity_kd


def test_region_similarity_kd_hand_derived():
    # memory = the two unit vectors; tau = 1/ln 3 makes the similarity logits [ln 3, 0] (teacher pixel [1, 0])
    # and [0, ln 3] (student pixel [0, 1]): softmaxes q = [3/4, 1/4], p = [1/4, 3/4],
    # KL(q || p) = 3/4 ln 3 + 1/4 ln(1/3) = (1/2) ln 3.
    memory = torch.eye(2)
    t, s = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert region_similarity_kd(s, t, memory, tau=1 / math.log(3.0)).item() == pytest.approx(
        0.5 * math.log(3.0), rel=1e-6)
    # kd_tau = 2 halves the logits ([ln 3 / 2, 0]: q = [sqrt 3, 1] / (sqrt 3 + 1), p = q reversed) and the
    # loss is multiplied by kd_tau^2 = 4.
    r3 = math.sqrt(3.0)
    q = [r3 / (r3 + 1), 1 / (r3 + 1)]
    kl = q[0] * math.log(q[0] / q[1]) + q[1] * math.log(q[1] / q[0])
    assert region_similarity_kd(s, t, memory, 1 / math.log(3.0), kd_tau=2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    # a second pixel equal on both sides adds 0 and halves the mean
    both_s, both_t = torch.cat([s, t]), torch.cat([t, t])
    assert region_similarity_kd(both_s, both_t, memory, 1 / math.log(3.0)).item() == pytest.approx(
        0.25 * math.log(3.0), rel=1e-6)


def test_enqueue_hand_derived_and_wraps_around():
    module = PixelRegionDistillation(2, memory_size=3)
    # two images of 4 pixels (C = 2, already unit vectors): image 0 has labels [1, 1, 0, 0], image 1 all 0.
    feats = torch.tensor([[[1.0, 0.0, 0.6, 0.0], [0.0, 1.0, 0.8, 1.0]],
                          [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    labels = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    module.enqueue(feats, labels)
    # class 0: image 0 mean of [0.6, 0.8] and [0, 1] = [0.3, 0.9] -> /sqrt(0.9); image 1: [1, 0]
    # class 1: image 0 mean of [1, 0] and [0, 1] = [0.5, 0.5] -> [1, 1]/sqrt 2; image 1 has none
    n = math.sqrt(0.9)
    assert module.region_queue[0, :2].tolist() == [pytest.approx([0.3 / n, 0.9 / n]), pytest.approx([1.0, 0.0])]
    assert module.region_queue[1, 0].tolist() == pytest.approx([1 / math.sqrt(2)] * 2)
    assert module.region_ptr.tolist() == [2, 1]
    module.enqueue(feats, labels)  # class 0 writes slots 2 and 0 (first in, first out)
    assert module.region_ptr.tolist() == [1, 2]
    assert module.region_queue[0, 2].tolist() == pytest.approx([0.3 / n, 0.9 / n])
    assert module.region_queue[0, 0].tolist() == pytest.approx([1.0, 0.0])


def reference_cirkd(student: np.ndarray, teacher: np.ndarray, gt: np.ndarray, queue: np.ndarray, ptr: list[int],
                    tau: float, kd_tau: float) -> tuple[float, np.ndarray]:
    """The CIRKD pixel-to-region step written out with loops (student already projected): nearest labels,
    per-image per-class mean of the normalised teacher vectors into the bank, then the mean per-pixel KL."""
    b, c, h, w = teacher.shape
    queue, size = queue.copy(), queue.shape[1]
    unit = lambda v: v / max(np.linalg.norm(v), 1e-12)  # noqa: E731
    step = gt.shape[-1] // w
    for i in range(b):
        labels = gt[i, 0, ::step, ::step].round().astype(int)  # nearest, at an integer factor
        for cls in (0, 1):
            pix = [unit(teacher[i, :, y, x]) for y in range(h) for x in range(w) if labels[y, x] == cls]
            if pix:
                queue[cls, ptr[cls] % size] = unit(np.mean(pix, axis=0))
                ptr[cls] += 1
    memory = queue.reshape(-1, c)
    total = 0.0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                lt = memory @ unit(teacher[i, :, y, x]) / tau / kd_tau
                ls = memory @ unit(student[i, :, y, x]) / tau / kd_tau
                q, p = np.exp(lt - lt.max()), np.exp(ls - ls.max())
                q, p = q / q.sum(), p / p.sum()
                total += float(np.sum(q * np.log(q / p)))
    return kd_tau ** 2 * total / (b * h * w), queue


@pytest.mark.parametrize("kd_tau", [1.0, 2.0])
def test_float64_cross_check_against_a_direct_rederivation(kd_tau):
    torch.manual_seed(5)
    module = PixelRegionDistillation(6, memory_size=4, tau=0.5, kd_tau=kd_tau).double()
    module.head = torch.nn.Identity()  # the projection is checked separately; here the loss itself
    queue0 = module.region_queue.numpy().copy()
    s, t = torch.randn(2, 6, 4, 4, dtype=torch.float64), torch.randn(2, 6, 4, 4, dtype=torch.float64)
    gt = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    gt[0, :, :8, :8] = 1.0  # image 0 has both classes, image 1 background only
    got = module(s, t, gt)
    want, queue = reference_cirkd(s.numpy(), t.numpy(), gt.numpy(), queue0, [0, 0], 0.5, kd_tau)
    assert got.dtype == torch.float64 and got.item() == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(module.region_queue.numpy(), queue, rtol=1e-12, atol=1e-15)


def test_zero_when_student_equals_teacher_gradients_finite_teacher_none():
    torch.manual_seed(6)
    module = PixelRegionDistillation(8, memory_size=5)
    t = torch.randn(2, 8, 4, 4)
    gt = (torch.rand(2, 1, 16, 16) > 0.5).float()
    identity = PixelRegionDistillation(8, memory_size=5)
    identity.head = torch.nn.Identity()
    assert identity(t.clone(), t, gt).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(2, 8, 4, 4, requires_grad=True)
    teacher = t.clone().requires_grad_(True)
    loss = module(s, teacher, gt)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert teacher.grad is None
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.head.parameters())


def fake_out(channels, scale=1.0):
    feats = [scale * torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(channels)]
    return SimpleNamespace(side_logits=[torch.randn(2, 1, 64, 64) for _ in channels], stage_feats=feats,
                           decoder_feats=feats)


def test_memory_bank_is_in_the_state_dict_and_a_resumed_loss_continues_it():
    """What last.pt's `kd_modules` holds (DistillationLoss.state_dict) restores the bank and its pointers, so the
    step after a resume equals the uninterrupted run's step."""
    from aclnet_kd.losses import DistillationLoss

    channels = (4, 6, 8, 10)
    torch.manual_seed(9)
    batches = [(fake_out(channels), fake_out(channels, 2.0), (torch.rand(2, 1, 64, 64) > 0.5).float())
               for _ in range(4)]
    torch.manual_seed(10)
    run = DistillationLoss({"cirkd": 1.0}, channels=channels, options={"cirkd_memory": 3})
    assert {"cirkd.region_queue", "cirkd.region_ptr"} <= set(run.state_dict())
    for s, t, gt in batches[:2]:
        run(s, t, gt)
    saved = {k: v.clone() for k, v in run.state_dict().items()}
    uninterrupted = [run(s, t, gt)["cirkd"].item() for s, t, gt in batches[2:]]
    torch.manual_seed(11)  # a fresh process: other random init, other bank
    resumed = DistillationLoss({"cirkd": 1.0}, channels=channels, options={"cirkd_memory": 3})
    assert not torch.equal(resumed.cirkd.region_queue, saved["cirkd.region_queue"])
    resumed.load_state_dict(saved)
    assert [resumed(s, t, gt)["cirkd"].item() for s, t, gt in batches[2:]] == pytest.approx(uninterrupted, rel=1e-6)
    assert torch.equal(resumed.cirkd.region_queue, run.cirkd.region_queue)
    assert resumed.cirkd.region_ptr.tolist() == run.cirkd.region_ptr.tolist()


def test_registered_term_needs_gt_and_its_head_always_trains():
    from aclnet_kd.losses import DistillationLoss

    channels = (4, 6, 8, 10)
    loss = DistillationLoss({"cirkd": 1.0}, channels=channels)
    with pytest.raises(ValueError, match="ground truth"):
        loss(fake_out(channels), fake_out(channels))
    trained = loss.trainable_parameters(False)
    assert {id(p) for p in trained} == {id(p) for p in loss.cirkd.parameters()}
    assert sum(p.numel() for p in trained) == 2 * 4 * 4 + 2 * 4  # two 1x1 convs C->C + BatchNorm's weight, bias
    with pytest.raises(ValueError, match="memory_size"):
        PixelRegionDistillation(4, memory_size=0)
    with pytest.raises(ValueError, match="must match"):
        PixelRegionDistillation(4)(torch.zeros(1, 4, 2, 2), torch.zeros(1, 5, 2, 2), torch.zeros(1, 1, 8, 8))


def test_nearest_labels_follow_the_gt():
    module = PixelRegionDistillation(2, memory_size=2)
    module.head = torch.nn.Identity()
    t = F.normalize(torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]]), dim=1)  # (1, 2, 1, 2): pixels [1,0], [0,1]
    gt = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]] * 2]])  # (1, 1, 2, 4): left background, right salient
    module(t, t, gt)
    assert module.region_queue[0, 0].tolist() == pytest.approx([1.0, 0.0])
    assert module.region_queue[1, 0].tolist() == pytest.approx([0.0, 1.0])
