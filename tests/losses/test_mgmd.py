"""MGMD: a numpy re-derivation with three separate branches, input sizes, edges (gradcheck, zero features and
bf16: the contract every registered term keeps, test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclnet_kd.losses import MGMD, soft_dice_loss


def adaptive_avg_pool_numpy(x: np.ndarray, out: int) -> np.ndarray:
    """Adaptive average pooling: bin i covers [floor(i*H/out), ceil((i+1)*H/out))."""
    b, c, h, w = x.shape
    y = np.zeros((b, c, out, out))
    for i in range(out):
        for j in range(out):
            r0, r1 = (i * h) // out, math.ceil((i + 1) * h / out)
            c0, c1 = (j * w) // out, math.ceil((j + 1) * w / out)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def side_numpy(x: np.ndarray, module: MGMD, side: str) -> list[np.ndarray]:
    """One side (student or teacher): for each branch g, pool -> conv -> BN (batch stats) -> ReLU -> graph."""
    c, pool = module.channels, module.pool_size
    branches, graphs = getattr(module, f"{side}_branches"), getattr(module, f"{side}_graphs")
    conv_w = branches[0].weight.detach().numpy()[:, :, 0, 0]
    conv_b, bn = branches[0].bias.detach().numpy(), branches[1]
    gamma, beta = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    pooled = adaptive_avg_pool_numpy(x.astype(np.float64), pool)
    outputs = []
    for g in range(3):
        rows = slice(g * c, (g + 1) * c)
        y = np.einsum("dc,bchw->bdhw", conv_w[rows], pooled) + conv_b[rows][None, :, None, None]
        mean, var = y.mean(axis=(0, 2, 3), keepdims=True), y.var(axis=(0, 2, 3), keepdims=True)
        y = (y - mean) / np.sqrt(var + bn.eps) * gamma[rows][None, :, None, None] + beta[rows][None, :, None, None]
        y = np.maximum(y, 0).reshape(len(x), c, pool * pool)
        p = {k: v.detach().numpy()[g] for k, v in graphs.named_parameters()}
        per_sample = []
        for b in range(len(x)):
            nodes = p["node_weight"] @ y[b].T + p["node_bias"][:, None]            # (N, C)
            nodes = nodes + p["adj_weight"] @ nodes + p["adj_bias"][:, None]       # (N, C)
            per_sample.append(np.maximum(p["channel_weight"] @ nodes.T + p["channel_bias"][:, None], 0))
        outputs.append(np.stack(per_sample))
    return outputs


def mgmd_numpy(student: np.ndarray, teacher: np.ndarray, module: MGMD) -> float:
    total = 0.0
    for s, t in zip(side_numpy(student, module, "student"), side_numpy(teacher, module, "teacher")):
        p, q = 1 / (1 + np.exp(-s)), 1 / (1 + np.exp(-t))
        dice = (2 * (p * q).sum(axis=(1, 2)) + 1) / (p.sum(axis=(1, 2)) + q.sum(axis=(1, 2)) + 1)
        total += np.mean(1 - dice)
    return float(total)


@pytest.mark.parametrize("side", [2, 3, 5])  # smaller than, equal to, larger than the pool size
def test_matches_numpy_rederivation(side):
    torch.manual_seed(0)
    module = MGMD(channels=6, pool_size=3)
    with torch.no_grad():  # non-trivial BN affine parameters
        for bn in (module.student_branches[1], module.teacher_branches[1]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    student, teacher = torch.randn(4, 6, side, side), torch.randn(4, 6, side, side)
    got = module(student, teacher).item()
    assert got == pytest.approx(mgmd_numpy(student.numpy(), teacher.numpy(), module), rel=1e-5)


def test_soft_dice_hand_computed():
    # sigmoid(0) = 0.5 and sigmoid(big) = 1 on 2 elements: dice = (2*1 + 1) / (1 + 2 + 1) = 0.75
    student = torch.zeros(1, 1, 2)
    teacher = torch.full((1, 1, 2), 50.0)
    assert soft_dice_loss(student, teacher).tolist() == pytest.approx([0.25], rel=1e-6)


@pytest.mark.parametrize("side", [4, 8, 10])  # stage 4 at 128, 256 and 320 px input
def test_works_at_every_training_size(side):
    torch.manual_seed(0)
    module = MGMD(channels=512, pool_size=8)
    loss = module(torch.randn(2, 512, side, side), torch.randn(2, 512, side, side))
    assert loss.ndim == 0 and torch.isfinite(loss) and 0 <= loss.item() <= 3


def test_graph_outputs_are_at_least_one_half():
    # The graph module ends in a ReLU and the dice takes a sigmoid of it: every map value is >= 0.5.
    torch.manual_seed(0)
    module = MGMD(channels=8, pool_size=4)
    for scale in (1.0, 50.0):
        out = module._graph_out(scale * torch.randn(3, 8, 4, 4), module.student_branches, module.student_graphs)
        assert torch.sigmoid(out).min().item() >= 0.5 and (out == 0).any()  # ReLU clips, sigmoid(0) = 0.5


@pytest.fixture
def one_thread():
    """Tiny ops: a second intra-op thread only spins against other processes on a busy 2-core machine (20x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_trained_kd_modules_lower_the_dice_by_saturating_not_matching(one_thread):
    # train_kd_modules: true with the features held fixed: Adam lowers the loss of MISMATCHED pairs (student i
    # against teacher i+1) as much as of the matched ones, by pushing both maps towards 1.
    torch.manual_seed(0)
    module = MGMD(channels=16, pool_size=4)
    student, teacher = torch.randn(4, 16, 4, 4), torch.randn(4, 16, 4, 4)
    mismatched = teacher.roll(1, dims=0)

    def mean_output() -> float:
        with torch.no_grad():
            return torch.sigmoid(module._graph_out(student, module.student_branches, module.student_graphs)).mean().item()

    before = (module(student, teacher).item(), module(student, mismatched).item(), mean_output())
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    for _ in range(200):
        optimizer.zero_grad()
        module(student, teacher).backward()
        optimizer.step()
    after = (module(student, teacher).item(), module(student, mismatched).item(), mean_output())
    assert after[0] < 0.6 * before[0] and after[1] < 0.6 * before[1]  # measured 0.45x and 0.47x
    assert abs(after[1] - after[0]) < 0.1 * after[0] + 0.01  # the pairing hardly matters any more
    assert after[2] > before[2] + 0.1
