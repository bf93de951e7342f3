"""How much each distillation term can matter: values, bounds and gradient norms (the figures of
docs/losses.md, "What the KD terms contribute").

For one batch of the paper's rail recipe (256 px, batch 6) through the student (Shunted-T) and the frozen
teacher (Shunted-B), both at random initialisation (no ImageNet weights are downloaded here) on SYNTHETIC
inputs (random images, random blob GT), it prints:

- each term's value, ATD's per level against its bound 2 / (H * W);
- the norm of each term's gradient with respect to the student's fused stage features s1..s4 (all four
  terms reach them: the label loss and ATD through the decoder, CLD and MGMD directly), and the ratios;
- MGMD's graph outputs (sigmoid after ReLU: >= 0.5);
- MGMD trained with ``train_kd_modules: true``: the stage-4 features held fixed, ``--steps`` Adam steps
  (lr 1e-4, the recipe's) on MGMD's own parameters; the loss on the matched pairs and on mismatched pairs
  (student i against teacher i + 1), and the mean graph output.

    python benchmarks/kd_term_scales.py [--size 256] [--batch 6] [--steps 300] [--small]

``--small`` uses timm's tiny test backbone instead of the Shunted ones (seconds instead of minutes).
"""

from __future__ import annotations

import argparse
import platform

import torch

from aclnet_kd.losses import DistillationLoss, LabelLoss
from aclnet_kd.losses.mgmd import MGMD
from aclnet_kd.models import build_model


def synthetic_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random RGB and depth, and a GT of one random disc per image (SYNTHETIC)."""
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch, 3, size, size, generator=generator)
    depth = torch.rand(batch, 1, size, size, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.rand(batch, 2, generator=generator) * size * 0.5 + size * 0.25
    radius = size * (0.1 + 0.2 * torch.rand(batch, generator=generator))
    inside = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    gt = (inside <= radius[:, None, None] ** 2).float()[:, None]
    return rgb, depth, gt


def forward_pair(args: argparse.Namespace) -> tuple:
    """The student (train mode) and the frozen teacher on one SYNTHETIC batch, both at random init.

    Returns ``(student_out, teacher_out, gt, header)``; ``header`` names the CPU, torch and the set-up, for the
    first printed line. Shared with kd_method_scales.py.
    """
    torch.manual_seed(0)
    cfg = {"backbone": "test_convnext"} if args.small else {}
    student, teacher = build_model("aclnet_s", **cfg).train(), build_model("aclnet_t", **cfg).eval()
    rgb, depth, gt = synthetic_batch(args.batch, args.size)
    with torch.no_grad():
        teacher_out = teacher(rgb, depth, return_all=True)
    student_out = student(rgb, return_all=True)
    header = (f"CPU: {platform.processor() or platform.machine()}; torch {torch.__version__}; SYNTHETIC inputs, "
              f"random-init {'test_convnext' if args.small else 'Shunted-T / Shunted-B'}, {args.size} px, "
              f"batch {args.batch}")
    return student_out, teacher_out, gt, header


def gradient_norms(terms: dict[str, torch.Tensor], student_out) -> dict[str, dict]:
    """Each term's value and the norm of its gradient w.r.t. the student's stage features s1..s4."""
    feats = list(student_out.stage_feats)
    result = {}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, feats, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None))
        result[name] = {"value": float(value.detach()), "grad_norm": float(norm)}
    return result


def print_norms(norms: dict[str, dict]) -> None:
    width = max(len(name) for name in norms)
    for name, row in norms.items():
        print(f"{name:{width}s} value {row['value']:.6g}  |grad wrt s1..s4| {row['grad_norm']:.4g}  "
              f"ratio to label {row['grad_norm'] / norms['label']['grad_norm']:.3g}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--small", action="store_true", help="timm's test_convnext backbones")


def atd_levels(student_out, teacher_out, kd: DistillationLoss) -> list[tuple[float, float]]:
    """(value, bound 2 / (H * W)) of ATD at each decoder level."""
    out = []
    for module, s, t in zip(kd.atd, student_out.decoder_feats, teacher_out.decoder_feats):
        out.append((float(module(s, t.detach()).detach()), 2.0 / (s.shape[2] * s.shape[3])))
    return out


def mgmd_collapse(student_s4: torch.Tensor, teacher_s4: torch.Tensor, steps: int, lr: float = 1e-4
                  ) -> list[dict[str, float]]:
    """Adam on MGMD's own parameters with the features fixed: loss on matched and mismatched pairs."""
    torch.manual_seed(0)
    mgmd = MGMD(student_s4.shape[1])
    optimizer = torch.optim.Adam(mgmd.parameters(), lr=lr)
    mismatched = teacher_s4.roll(1, dims=0)
    history = []
    for step in range(steps + 1):
        loss = mgmd(student_s4, teacher_s4)
        if step % max(1, steps // 6) == 0 or step == steps:
            with torch.no_grad():
                out = mgmd._graph_out(student_s4, mgmd.student_branches, mgmd.student_graphs)
                history.append({"step": step, "loss": float(loss), "mismatched": float(mgmd(student_s4, mismatched)),
                                "mean_output": float(torch.sigmoid(out).mean())})
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    student_out, teacher_out, gt, header = forward_pair(args)
    kd = DistillationLoss({"cld": 1.0, "mgmd": 1.0, "atd": 1.0})
    print(header)
    norms = gradient_norms({"label": LabelLoss()(student_out.side_logits, gt), **kd(student_out, teacher_out)},
                           student_out)
    print_norms(norms)
    print(f"ATD / CLD gradient-norm ratio {norms['atd']['grad_norm'] / norms['cld']['grad_norm']:.3g}")
    levels = atd_levels(student_out, teacher_out, kd)
    for i, (value, bound) in enumerate(levels, 1):
        print(f"ATD level {i}: {value:.3g} <= 2/(H*W) = {bound:.4g}")
    print(f"ATD bound summed over the levels: {sum(b for _, b in levels):.4f}")
    s4, t4 = student_out.stage_feats[3].detach(), teacher_out.stage_feats[3].detach()
    with torch.no_grad():
        graph = kd.mgmd._graph_out(s4, kd.mgmd.student_branches, kd.mgmd.student_graphs)
    print(f"MGMD graph outputs after the sigmoid: min {float(torch.sigmoid(graph).min()):.4f} (>= 0.5)")
    for row in mgmd_collapse(s4, t4, args.steps):
        print(f"MGMD trained, step {row['step']:4d}: loss {row['loss']:.4f}  mismatched pairs {row['mismatched']:.4f}"
              f"  mean output {row['mean_output']:.4f}")


if __name__ == "__main__":
    main()
