"""How large the classic KD terms are next to the label loss and ACLNet's terms (docs/losses.md,
"Classic KD methods"): each term's value and the norm of its gradient with respect to the student's fused
stage features s1..s4.

One batch through the student (Shunted-T) and the frozen teacher (Shunted-B), both at random
initialisation, on SYNTHETIC inputs (the set-up of ``kd_term_scales.py``: random images, one random disc as
GT). The terms: the label loss; ``response`` (BCE, and KL at T = 4) on the side logits; ``fitnet`` (random
1x1 adapters) and ``at`` (beta = 1000) on s1..s4; CLD, MGMD and ATD at weight 1, as released; the
dense-prediction baselines ``cwd`` (tau 1, on the decoder features am1..am4 and, ``cwd_logits``, on the side
logits) and ``cirkd`` (pixel-to-region on am1 against a fresh random region bank, with this batch's regions).

    python benchmarks/kd_method_scales.py [--size 256] [--batch 6] [--small]

``--small`` uses timm's tiny test backbone instead of the Shunted ones (seconds instead of minutes).
"""

from __future__ import annotations

import argparse

import torch
from kd_term_scales import add_arguments, forward_pair, gradient_norms, print_norms  # this folder is on sys.path

from aclnet_kd.losses import DistillationLoss, LabelLoss
from aclnet_kd.losses.at import AttentionTransfer
from aclnet_kd.losses.fitnet import FitNetHint
from aclnet_kd.losses.response import ResponseKD


def classic_terms(student_out, teacher_out) -> dict[str, torch.Tensor]:
    """The classic KD terms, each on the ACLNetOutput field it declares (``consumes``)."""
    torch.manual_seed(0)
    modules = {"response_bce": ResponseKD(), "response_kl_T4": ResponseKD("kl", 4.0), "fitnet": FitNetHint(),
               "at": AttentionTransfer()}
    return {name: m(getattr(student_out, m.consumes), getattr(teacher_out, m.consumes))
            for name, m in modules.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args()
    student_out, teacher_out, gt, header = forward_pair(args)
    terms = {"label": LabelLoss()(student_out.side_logits, gt), **classic_terms(student_out, teacher_out),
             **DistillationLoss({"cld": 1.0, "mgmd": 1.0, "atd": 1.0})(student_out, teacher_out),
             **DistillationLoss({"cwd": 1.0, "cirkd": 1.0})(student_out, teacher_out, gt),
             "cwd_logits": DistillationLoss({"cwd": 1.0}, options={"cwd_on": "side_logits"})(
                 student_out, teacher_out)["cwd"]}
    print(header)
    print_norms(gradient_norms(terms, student_out))


if __name__ == "__main__":
    main()
