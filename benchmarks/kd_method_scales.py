"""How large the classic KD terms are next to the label loss and ACLNet's terms (docs/losses.md,
"Classic KD methods"): each term's value and the norm of its gradient with respect to the student's fused
stage features s1..s4.

One batch through the student (Shunted-T) and the frozen teacher (Shunted-B), both at random
initialisation, on SYNTHETIC inputs (``kd_term_scales.synthetic_batch``: random images, one random disc as
GT). The terms: the label loss; ``response`` (BCE, and KL at T = 4) on the side logits; ``fitnet`` (random
1x1 adapters) and ``at`` (beta = 1000) on s1..s4; CLD, MGMD and ATD at weight 1, as released.

    python benchmarks/kd_method_scales.py [--size 256] [--batch 6] [--small]

``--small`` uses timm's tiny test backbone instead of the Shunted ones (seconds instead of minutes).
"""

from __future__ import annotations

import argparse
import platform

import torch
from kd_term_scales import synthetic_batch  # this folder is on sys.path when the script runs

from aclnet_kd.losses import DistillationLoss, LabelLoss
from aclnet_kd.losses.at import AttentionTransfer
from aclnet_kd.losses.fitnet import FitNetHint
from aclnet_kd.losses.response import ResponseKD
from aclnet_kd.models import build_model


def classic_terms(student_out, teacher_out) -> dict[str, torch.Tensor]:
    """The classic KD terms, each on the ACLNetOutput field it declares (``consumes``)."""
    torch.manual_seed(0)
    modules = {"response_bce": ResponseKD(), "response_kl_T4": ResponseKD("kl", 4.0), "fitnet": FitNetHint(),
               "at": AttentionTransfer()}
    return {name: m(getattr(student_out, m.consumes), getattr(teacher_out, m.consumes))
            for name, m in modules.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--small", action="store_true", help="timm's test_convnext backbones")
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = {"backbone": "test_convnext"} if args.small else {}
    student, teacher = build_model("aclnet_s", **cfg).train(), build_model("aclnet_t", **cfg).eval()
    rgb, depth, gt = synthetic_batch(args.batch, args.size)
    with torch.no_grad():
        teacher_out = teacher(rgb, depth, return_all=True)
    student_out = student(rgb, return_all=True)
    terms = {"label": LabelLoss()(student_out.side_logits, gt), **classic_terms(student_out, teacher_out),
             **DistillationLoss({"cld": 1.0, "mgmd": 1.0, "atd": 1.0})(student_out, teacher_out)}
    print(f"CPU: {platform.processor() or platform.machine()}; torch {torch.__version__}; SYNTHETIC inputs, "
          f"random-init {'test_convnext' if args.small else 'Shunted-T / Shunted-B'}, {args.size} px, batch {args.batch}")
    feats = list(student_out.stage_feats)
    norms = {}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, feats, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))
    for name, value in terms.items():
        print(f"{name:15s} value {float(value.detach()):.6g}  |grad wrt s1..s4| {norms[name]:.4g}  "
              f"ratio to label {norms[name] / norms['label']:.3g}")


if __name__ == "__main__":
    main()
