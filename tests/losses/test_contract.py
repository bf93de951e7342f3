"""The contract every registered KD term keeps (registry.TERMS, built by its registered builder, called through
``distill`` as DistillationLoss calls it), and the label loss beside them: float64 gradients match finite
differences, all-zero features give a finite loss and finite gradients, and under bf16 autocast the term
returns float32 close to its fp32 value. A term is tested here the moment it is registered; each loss's own
test file holds its golden values."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from aclnet_kd.losses import LabelLoss
from aclnet_kd.losses.distillation import build_term
from aclnet_kd.losses.registry import GT_FIELD, TERMS, KDTerm

# Small levels 1..4: channels (as constants.LEVEL_CHANNELS, scaled down) and sides; CLD's negatives need a batch
# above 1. The side outputs and the GT are at the input's size.
CHANNELS = (4, 4, 6, 8)
SIDES = (8, 4, 2, 2)
BATCH, IMAGE = 3, 16
# DistillationLoss's own options (tau, atd_teacher_fix, ...), the MGMD pool fitted to the small stage 4.
OPTIONS = {"tau": 0.5, "atd_teacher_fix": False, "mgmd_pool_size": 2, "gather_across_ranks": False}
# Each term with its default options, and the option that changes its formula.
VARIANTS = {"atd": {"atd_teacher_fix": True}, "response": {"response_mode": "kl", "response_temperature": 3.0},
            "cwd": {"cwd_on": "side_logits"}}
CASES = [pytest.param(term, {}, id=term.name) for term in TERMS] + [
    pytest.param(term, VARIANTS[term.name], id=f"{term.name}-{next(iter(VARIANTS[term.name].values()))}")
    for term in TERMS if term.name in VARIANTS]
# bf16 keeps 8 bits of mantissa: how far each term may drift from fp32 (relative), the rest 2e-2.
BF16_REL = {"atd": 5e-2, "cirkd": 5e-2, "cwd": 3e-2, "fitnet": 3e-2}


class Distill(nn.Module):
    """A term's ``distill`` as a module's forward, so torch.func.functional_call can swap its parameters."""

    def __init__(self, term: nn.Module) -> None:
        super().__init__()
        self.term = term

    def forward(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self.term.distill(student, teacher)


def _level(field: str, i: int, make: Callable[..., Tensor], dtype: torch.dtype) -> Tensor:
    if field == "side_logits":
        return make(BATCH, 1, IMAGE, IMAGE, dtype=dtype)
    return make(BATCH, CHANNELS[i], SIDES[i], SIDES[i], dtype=dtype)


def term_inputs(term: KDTerm, make: Callable[..., Tensor] = torch.randn, dtype: torch.dtype = torch.float32
                ) -> tuple[dict[str, list[Tensor]], dict[str, list[Tensor]]]:
    """What DistillationLoss gives ``term.distill``: each consumed field's levels (``make``-filled), the GT."""
    student, teacher = {}, {}
    for field in term.consumes:
        if field == GT_FIELD:
            student[field] = teacher[field] = [(torch.rand(BATCH, 1, IMAGE, IMAGE) > 0.5).to(dtype)]
        else:
            student[field] = [_level(field, i, make, dtype) for i in range(len(CHANNELS))]
            teacher[field] = [_level(field, i, make, dtype) for i in range(len(CHANNELS))]
    return student, teacher


def build(term: KDTerm, options: dict) -> nn.Module:
    return build_term(term, {**OPTIONS, **options}, CHANNELS)


def _student_leaves(term: KDTerm, student: dict[str, list[Tensor]]) -> list[tuple[str, int]]:
    return [(field, i) for field in term.consumes if field != GT_FIELD for i in range(len(student[field]))]


@pytest.mark.parametrize("term, options", CASES)
def test_gradcheck_float64(term: KDTerm, options: dict) -> None:
    """Gradients of the student's inputs and of the term's own parameters. Every call gets the buffers as they
    were (CIRKD's memory bank, BatchNorm's running statistics move at each call), so gradcheck sees one function."""
    torch.manual_seed(0)
    module = Distill(build(term, options)).double()
    student, teacher = term_inputs(term, dtype=torch.float64)
    leaves = _student_leaves(term, student)
    names = [name for name, p in module.named_parameters() if p.requires_grad]
    params = dict(module.named_parameters())
    buffers = {name: b.clone() for name, b in module.named_buffers()}

    def fn(*args: Tensor) -> Tensor:
        inputs = {field: list(levels) for field, levels in student.items()}
        for (field, i), value in zip(leaves, args):
            inputs[field][i] = value
        swapped = {**dict(zip(names, args[len(leaves):])), **{name: b.clone() for name, b in buffers.items()}}
        return torch.func.functional_call(module, swapped, (inputs, teacher))

    args = [student[field][i].requires_grad_() for field, i in leaves]
    args += [params[name].detach().clone().requires_grad_() for name in names]
    assert torch.autograd.gradcheck(fn, tuple(args), fast_mode=True)


@pytest.mark.parametrize("term, options", CASES)
def test_zero_features_finite_loss_and_gradients(term: KDTerm, options: dict) -> None:
    """All-zero student and teacher levels (a dead feature map; sides of logit 0): no NaN, in the loss, the
    student's gradients or the term's own parameters' gradients."""
    torch.manual_seed(0)
    module = build(term, options)
    student, teacher = term_inputs(term, torch.zeros)
    for field, i in _student_leaves(term, student):
        student[field][i].requires_grad_()
    loss = module.distill(student, teacher)
    loss.backward()
    assert torch.isfinite(loss)
    # the levels the term reads (MGMD reads stage 4 only, CIRKD am1, CWD one of its two fields)
    grads = [student[f][i].grad for f, i in _student_leaves(term, student) if student[f][i].grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("term, options", CASES)
def test_bf16_autocast_returns_float32_close_to_fp32(term: KDTerm, options: dict) -> None:
    """Under bf16 autocast a model's outputs are bf16: the term, given them, returns float32 within its
    tolerance of the fp32 value (state put back in between: CIRKD's memory bank moves at every call)."""
    torch.manual_seed(0)
    module = build(term, options)
    student, teacher = term_inputs(term)
    state = {name: value.clone() for name, value in module.state_dict().items()}
    ref = module.distill(student, teacher).item()
    module.load_state_dict(state)
    bf16 = [{f: [t if f == GT_FIELD else t.bfloat16() for t in levels] for f, levels in side.items()}
            for side in (student, teacher)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = module.distill(*bf16)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref, rel=BF16_REL.get(term.name, 2e-2))


# The label loss is no KD term (the registry's LABEL weight is applied by the trainer), but keeps the same contract.

def _sides(make: Callable[..., Tensor], dtype: torch.dtype = torch.float32) -> list[Tensor]:
    return [make(2, 1, 3, 3, dtype=dtype) for _ in range(4)]


def test_label_loss_gradcheck_float64() -> None:
    torch.manual_seed(0)
    gt = (torch.rand(2, 1, 3, 3) > 0.5).double()
    sides = [side.requires_grad_() for side in _sides(torch.randn, torch.float64)]
    assert torch.autograd.gradcheck(lambda *s: LabelLoss()(list(s), gt), tuple(sides))


def test_label_loss_zero_logits_finite() -> None:
    gt = (torch.rand(2, 1, 3, 3) > 0.5).float()
    sides = [side.requires_grad_() for side in _sides(torch.zeros)]
    loss = LabelLoss()(sides, gt)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(s.grad).all() for s in sides)


def test_label_loss_bf16_autocast_close_to_fp32_and_float32_output() -> None:
    torch.manual_seed(0)
    gt = (torch.rand(2, 1, 16, 16) > 0.5).float()
    sides = [torch.randn(2, 1, 16, 16) for _ in range(4)]
    ref = LabelLoss()(sides, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = LabelLoss()([s.bfloat16() for s in sides], gt)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=2e-2)
