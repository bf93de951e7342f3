"""The run table (aclnet_kd.workflow.runs): each run written once, and what the plan and report derive from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aclnet_kd.constants import ROLES
from aclnet_kd.losses.registry import RELEASE_TERMS
from aclnet_kd.workflow import plan, runs
from aclnet_kd.workflow.runs import RunKind

SRC = Path(__file__).resolve().parents[2] / "src" / "aclnet_kd"
PARAMS = {"seeds": [3, 4], "tracks": {"rail": {}, "sod": {}}, "ablations": {"kd_cld": "cld=1,mgmd=0,atd=0"},
          "kd_methods": {"kd_at": {"at": 1.0}}, "external": {"release": {"track": "rail"}}}


def test_every_kind_has_its_stage_in_the_plan():
    for kind in runs.KINDS:
        assert kind.stage in plan.STAGES and kind.stage in plan.JOBS, kind.name
    assert runs.KIND["student_kd"].terms == RELEASE_TERMS and runs.STUDENT.terms == ()
    assert runs.COMPARISONS == {"S* − S": ("student_kd", "student"), "T − S": ("teacher", "student")}
    assert runs.LABELS == {"teacher": "ACLNet-T", "student": "ACLNet-S", "student_kd": "ACLNet-S*"}


def test_trained_runs_follow_the_table():
    assert runs.trained_runs(PARAMS) == [("teacher", 3), ("student", 3), ("student", 4), ("student_kd", 3),
                                        ("student_kd", 4), ("kd_cld", 3), ("kd_at", 3), ("kd_at", 4)]
    jobs = plan.JOBS[runs.ABLATIONS.stage](PARAMS)
    assert jobs[0] == dict(track="rail", run="kd_cld", seed=3, weights="cld=1,mgmd=0,atd=0")


def test_a_new_fixed_kind_is_one_entry():
    """What the plan makes of a kind it has never seen: its training command, params reads and jobs."""
    kind = RunKind("student_half", "train_student_half", label="ACLNet-S½", kd=runs.RELEASE, all_seeds=False)
    stage = plan._train(kind)
    assert stage.name == "train_student_half"
    assert "--role student --kd on --teacher {teacher} --data" in stage.commands[0]
    assert "kd" in stage.reads and "{teacher}" in stage.inputs
    assert plan._train_jobs(kind)(PARAMS) == [dict(track=t, run="student_half", seed=3) for t in ("rail", "sod")]
    with pytest.raises(ValueError, match="parts"):
        RunKind("x", "train_x", parts=("table9",))


def test_a_new_configured_kind_takes_its_kd_option_from_the_table():
    """A configured kind's command-line option, params read and job field come from its entry alone."""
    kind = RunKind("kd_sweep", "train_kd_sweep", kd="kd_sweep", kd_option="--kd-weights {weights}",
                   kd_reads="kd_sweep.{run}", entry_field="weights", configured=True)
    stage = plan._train(kind)
    assert "--kd on --teacher {teacher} --kd-weights {weights} --data" in stage.commands[0]
    assert "kd_sweep.{run}" in stage.reads and "kd" in stage.reads
    params = {**PARAMS, "kd_sweep": {"half": "cld=0.5"}}
    assert plan._train_jobs(kind)(params)[0] == dict(track="rail", run="half", seed=3, weights="cld=0.5")
    assert "--kd-method {run} --data" in plan.STAGES[runs.KD_METHODS.stage].commands[0]


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_fixed_run_names_and_labels_are_written_once():
    """A fixed run's name and label (outside docstrings) are strings only in the run table; the rest derive
    from it. ("teacher" and "student" are also the roles' names, so only the other names are checked.)"""
    literals = {str(path.relative_to(SRC)): _string_literals(path) for path in sorted(SRC.rglob("*.py"))}
    for kind in runs.FIXED:
        words = [where for where, texts in literals.items() for text in texts if kind.name in text.split()]
        labels = [where for where, texts in literals.items() for text in texts if text == kind.label]
        assert labels == ["workflow/runs.py"], (kind.name, labels)
        if kind.name not in ROLES:
            assert words == ["workflow/runs.py"], (kind.name, words)
