"""MGMD: multi-branch graph distillation on the deepest (stage-4) features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import math

import torch
from torch import Tensor, nn

from ._numerics import float32_region, upcast


def soft_dice_loss(student_logits: Tensor, teacher_logits: Tensor, smooth: float = 1.0) -> Tensor:
    r"""1 - dice between sigmoid maps, per leading index, then the mean over the batch axis 0.

    Inputs ``(B, G, ...)``: for each sample b and group g, with p = sigmoid(student), q =
    sigmoid(teacher) summed over the trailing axes,

        dice_bg = (2 sum(p q) + smooth) / (sum(p) + sum(q) + smooth)

    and the result has shape ``(G,)``: mean_b (1 - dice_bg). Runs in float32.
    """
    with float32_region(student_logits):
        p = torch.sigmoid(upcast(student_logits)).flatten(2)
        q = torch.sigmoid(upcast(teacher_logits)).flatten(2)
        dice = (2.0 * (p * q).sum(-1) + smooth) / (p.sum(-1) + q.sum(-1) + smooth)
        return (1.0 - dice).mean(0)


class BranchGraphs(nn.Module):
    r"""G independent graph-reasoning modules, applied to G branches at once.

    For branch g with input X_g ``(C, L)`` (L = H*W positions):

        V_g = W^node_g X_g^T + b^node_g               (C positions -> N nodes: ``(N, C)``)
        V_g = V_g + (W^adj_g V_g + b^adj_g)            (node mixing with residual)
        Y_g = ReLU(W^ch_g V_g^T + b^ch_g)              (channel mixing: ``(C, N)``)

    i.e. the release's ``Graph_inflection`` (three Conv1d with kernel 1), with the G branches'
    weights stacked so one einsum serves all of them. Initialisation follows the release:
    weights ~ N(0, 2 / out_features), biases ~ U(+-1 / sqrt(in_features)) (Conv1d's default).
    """

    def __init__(self, num_branches: int, positions: int, channels: int, nodes: int) -> None:
        super().__init__()
        g = num_branches
        self.node_weight, self.node_bias = self._params(g, nodes, positions)
        self.adj_weight, self.adj_bias = self._params(g, nodes, nodes)
        self.channel_weight, self.channel_bias = self._params(g, channels, channels)

    @staticmethod
    def _params(g: int, out_features: int, in_features: int) -> tuple[nn.Parameter, nn.Parameter]:
        weight = torch.randn(g, out_features, in_features) * math.sqrt(2.0 / out_features)
        bound = 1.0 / math.sqrt(in_features)
        bias = torch.empty(g, out_features).uniform_(-bound, bound)
        return nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, G, C, L)`` -> ``(B, G, C, N)``."""
        nodes = torch.einsum("gnl,bgcl->bgnc", self.node_weight, x) + self.node_bias[None, :, :, None]
        nodes = nodes + torch.einsum("gnm,bgmc->bgnc", self.adj_weight, nodes) + self.adj_bias[None, :, :, None]
        out = torch.einsum("gdc,bgnc->bgdn", self.channel_weight, nodes) + self.channel_bias[None, :, :, None]
        return torch.relu(out)


class MGMD(nn.Module):
    r"""Multi-Granularity (multi-branch) Graph Distillation on stage-4 features (ACLNet-KD "MGMD").

    Student S and teacher T ``(B, C, H, W)`` each pass through three branches
    (adaptive average pooling to P x P, 1x1 conv C -> C, BatchNorm, ReLU; one set of three for
    the student, another for the teacher), then each branch through its own graph module
    (:class:`BranchGraphs`, L = P*P positions -> N = P nodes), and

        L = sum_{g=1..3} mean_b [ 1 - dice(sigmoid(Graph^S_g(S)), sigmoid(Graph^T_g(T)))_b ]

    (:func:`soft_dice_loss`, smoothing 1). The release calls its branches "dilation 1/3/5", but
    a dilated 1x1 conv is a plain 1x1 conv: the three branches differ only by their weights.
    The three branch convs are one C -> 3C conv here (and one BatchNorm over 3C channels): the
    same function as three separate ones.

    P is fixed (8, the release's stage-4 size at 256 px), so the module's shapes do not depend
    on the input size: a 4x4 stage 4 (128 px) is upsampled by the pooling, 10x10 (320 px) pooled.
    BatchNorm uses momentum 0.95 as released; in training mode it normalises with batch statistics.

    References: ACLNet-KD release, ``distillation_loss/KD_middle.py`` (``MGMD``, ``Graph_loss``,
    ``Graph_inflection``, ``dice_loss``); graph reasoning after Chen et al., "Graph-Based Global
    Reasoning Networks" (GloRe), CVPR 2019; dice loss after Milletari et al., "V-Net", 3DV 2016.
    """

    num_branches = 3

    def __init__(self, channels: int = 512, pool_size: int = 8, nodes: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.pool_size = pool_size
        nodes = pool_size if nodes is None else nodes
        g = self.num_branches
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.student_branches = self._branches(channels, g)
        self.teacher_branches = self._branches(channels, g)
        self.student_graphs = BranchGraphs(g, pool_size * pool_size, channels, nodes)
        self.teacher_graphs = BranchGraphs(g, pool_size * pool_size, channels, nodes)

    @staticmethod
    def _branches(channels: int, g: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(channels, g * channels, kernel_size=1),
            nn.BatchNorm2d(g * channels, momentum=0.95),
            nn.ReLU(),
        )

    def _graph_out(self, x: Tensor, branches: nn.Sequential, graphs: BranchGraphs) -> Tensor:
        b = x.shape[0]
        y = branches(self.pool(x))  # (B, 3C, P, P)
        return graphs(y.reshape(b, self.num_branches, self.channels, -1))

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f"MGMD: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
        if student.shape[1] != self.channels:
            raise ValueError(f"MGMD built for {self.channels} channels, got {student.shape[1]}")
        s = self._graph_out(student, self.student_branches, self.student_graphs)
        t = self._graph_out(teacher, self.teacher_branches, self.teacher_graphs)
        return soft_dice_loss(s, t).sum()


class MGMDTerm(MGMD):
    """The registered term ``mgmd``: :class:`MGMD` on the deepest stage feature s4."""

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student["stage_feats"][-1], teacher["stage_feats"][-1])


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> MGMDTerm:
    """Registry builder: option ``mgmd_pool_size``."""
    return MGMDTerm(channels[-1], options["mgmd_pool_size"])
