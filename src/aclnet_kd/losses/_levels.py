"""The one check of a feature-level KD term's inputs: the student's and the teacher's lists of levels pair up."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def check_levels(name: str, student: Sequence[Tensor], teacher: Sequence[Tensor], what: str = "tensors",
                 count: int | None = None) -> None:
    """As many student as teacher levels: ``count`` of each when given, else at least one. A ValueError led by
    the term's ``name`` gives both counts otherwise (the per-level shapes are each term's own check)."""
    if count is None:
        ok, need = len(student) >= 1 and len(student) == len(teacher), f"as many student as teacher {what} (>= 1)"
    else:
        ok, need = len(student) == count == len(teacher), f"{count} student and teacher {what}"
    if not ok:
        raise ValueError(f"{name}: needs {need}, got {len(student)} and {len(teacher)}")
