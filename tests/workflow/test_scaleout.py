"""Scale-out, run for real: the DAG through `profiles/slurm` on a one-node SLURM cluster (conftest
`slurm_cluster`, no accounting storage), a training preempted with `scancel` that resumes from last.pt bit for
bit, the DAG with `compute.launcher` = torchrun (2 gloo processes per training) through `snakemake --cores 2`,
and one such training as a SLURM job.

Slow (minutes on 2 cores): marker `scaleout`, run by `make test-scaleout` and by .ci/run, not by `make test`.
Each test copies the repository (conftest.copy_repo) with the smoke preset merged into params.yaml.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import torch

from aclnet_kd.checkpoint import safe_load
from conftest import BIN_DIR, copy_repo, run, snakemake_jobs, tool_env

pytestmark = pytest.mark.scaleout

SNAKEMAKE = str(BIN_DIR / "snakemake")
# The profile as a user runs it, plus what only a test wants: the first status query after 2 s, not 40 s
# (snakemake-executor-plugin-slurm's default, sized for busy clusters), and no wait for a slow file system.
SLURM_RUN = [SNAKEMAKE, "--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "2",
             "--latency-wait", "5"]
TORCHRUN = "torchrun --standalone --nproc_per_node 2 -m aclnet_kd.cli"


def _slurm_env(cluster, cwd: Path) -> dict[str, str]:
    env = tool_env(cwd.parent)
    return {**env, "SLURM_CONF": str(cluster.conf), "PATH": f"{cluster.bin}:{env['PATH']}"}


def _run_on(cluster, cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_slurm_env(cluster, cwd), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout ---\n"
                                  f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}")
    return proc


def _slurm_jobs_by_rule(cluster, since: set[str]) -> dict[str, list[dict]]:
    """The cluster's jobs not in ``since`` (ids), by the rule the plugin wrote into the job's comment."""
    by_rule: dict[str, list[dict]] = {}
    for job in cluster.jobs():
        if job["id"] not in since and job["comment"].startswith("rule_"):
            rule = job["comment"][len("rule_"):].split("_wildcards_")[0]
            by_rule.setdefault(rule, []).append(job)
    return by_rule


def _planned_counts(repo: Path, target: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in snakemake_jobs(repo, target):
        counts[job["rule"]] = counts.get(job["rule"], 0) + 1
    return counts


# ---- the DAG through profiles/slurm ---------------------------------------------------------------------

@pytest.mark.timeout(1500)
def test_smoke_dag_through_slurm_profile(slurm_cluster, tmp_path):
    """Every job of the smoke DAG becomes one sbatch job on partitions `cpu`/`gpu`; the profile's status
    command (squeue) works on a cluster without accounting storage; tables and figures are written."""
    repo = copy_repo(tmp_path / "repo")
    planned = _planned_counts(repo, [])
    before = {job["id"] for job in slurm_cluster.jobs()}
    start = time.perf_counter()
    out = _run_on(slurm_cluster, SLURM_RUN, repo, timeout=1400)
    print(f"\nsmoke DAG through profiles/slurm: {time.perf_counter() - start:.1f} s, "
          f"{sum(planned.values())} jobs")

    for name in ("table1", "table2"):
        assert "|" in (repo / f"results/tables/{name}.md").read_text()
    assert (repo / "results/figures/pr_rail_test.png").stat().st_size > 0
    by_rule = _slurm_jobs_by_rule(slurm_cluster, before)
    assert {rule: len(jobs) for rule, jobs in by_rule.items()} == planned, out.stderr[-3000:]
    for rule, jobs in by_rule.items():
        assert all(job["state"] == "COMPLETED" for job in jobs), (rule, jobs)
        partition = "gpu" if rule.startswith("train") or rule == "predict_evaluate" else "cpu"
        assert {job["partition"] for job in jobs} == {partition}, (rule, jobs)
    # The status query never asked accounting storage (the profile's squeue; the plugin's account guess may
    # try sacct, which fails harmlessly).
    assert "accounting storage is disabled" not in out.stdout + out.stderr
    assert "status command is not 'sacct'" not in out.stdout + out.stderr  # no job failed either


# ---- preemption: scancel a training, it resumes from last.pt ----------------------------------------------

RESUMED = re.compile(r"resumed from \S+last\.pt at epoch (\d+), batch (\d+)/(\d+)")


def _cancel_training_after_first_checkpoint(cluster, run_dir: Path, snake: subprocess.Popen,
                                            timeout: float) -> str:
    """Wait for the training's first last.pt, then `scancel` its SLURM job; returns the job id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and snake.poll() is None:
        if (run_dir / "last.pt").exists():
            running = [job for job in _slurm_jobs_by_rule(cluster, set()).get("train_student", [])
                       if job["state"] == "RUNNING"]
            if running:
                cluster.client(["scancel", running[0]["id"]])
                return running[0]["id"]
        time.sleep(0.1)
    snake.kill()
    raise AssertionError(f"no last.pt in {run_dir} while its job ran (snakemake exit {snake.poll()})")


@pytest.mark.timeout(900)
def test_cancelled_training_resumes_from_last_pt_bit_identical(slurm_cluster, tmp_path):
    """A training checkpointing after every step is cancelled on the cluster after its first last.pt; the
    profile's `retries` submits it again (last.pt is no declared output: Snakemake leaves it in place
    when the job starts), and it resumes: its log says from which step, and its best.pt and every epoch's losses and
    val metrics equal an uninterrupted run's, bit for bit on the CPU (tests/train/test_resume_ddp.py does the same with kill -9)."""
    repo = copy_repo(tmp_path / "repo", edit={"train": {"epochs": 4, "checkpoint_every": 1,
                                                        "deterministic": True}})
    run_rel = "results/train/rail/student/seed0"
    target = f"{run_rel}/run.json"
    before = {job["id"] for job in slurm_cluster.jobs()}  # other tests' jobs stay listed (MinJobAge)
    with open(tmp_path / "snakemake.log", "w") as log:
        snake = subprocess.Popen(SLURM_RUN + [target], cwd=repo, env=_slurm_env(slurm_cluster, repo),
                                 stdout=log, stderr=subprocess.STDOUT, text=True)
        cancelled = _cancel_training_after_first_checkpoint(slurm_cluster, repo / run_rel, snake, 600)
        snake.wait(timeout=600)
    out = (tmp_path / "snakemake.log").read_text()
    assert snake.returncode == 0, out[-6000:]

    by_rule = _slurm_jobs_by_rule(slurm_cluster, before)
    states = {job["id"]: job["state"] for job in by_rule["train_student"]}  # this test's one training
    assert states[cancelled] == "CANCELLED" and sorted(states.values()) == ["CANCELLED", "COMPLETED"], states
    assert [job["state"] for job in by_rule["prepare"]] == ["COMPLETED"]
    resumed = RESUMED.search((repo / run_rel / "train.log").read_text())
    assert resumed, (repo / run_rel / "train.log").read_text()[-3000:]
    epoch, batch, steps = map(int, resumed.groups())
    assert (epoch - 1) * steps + batch >= 1  # at least the first step was not repeated

    # The same command, uninterrupted, outside SLURM.
    cmd = next(job["cmd"] for job in snakemake_jobs(repo, [target]) if job["rule"] == "train_student")
    straight = tmp_path / "straight"
    run(shlex.split(cmd.replace(f"--out {run_rel}", f"--out {straight}")), repo, timeout=300)
    a, b = safe_load(straight / "best.pt"), safe_load(repo / run_rel / "best.pt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), f"best.pt: {key} differs"
    # a finished last.pt keeps the history, not the resume state: every epoch's losses and val metrics (the
    # last one's from the final weights) equal, bit for bit
    timing = ("seconds", "images_per_s")
    a, b = safe_load(straight / "last.pt")["train_state"], safe_load(repo / run_rel / "last.pt")["train_state"]
    assert ([{k: v for k, v in h.items() if k not in timing} for h in a["history"]]
            == [{k: v for k, v in h.items() if k not in timing} for h in b["history"]])


# ---- torchrun through the workflow ------------------------------------------------------------------------

def _assert_world_size_2(run_json: Path) -> None:
    record = json.loads(run_json.read_text())
    assert record["world_size"] == 2 and record["device"] == "cpu", (run_json, record)
    assert "world_size=2" in (run_json.parent / "train.log").read_text()


@pytest.mark.timeout(1200)
def test_smoke_dag_with_torchrun_launcher(tmp_path):
    """compute.launcher = torchrun with 2 processes (gloo on the CPU), through `snakemake --cores 2`: every
    training runs 2 DDP ranks (its run.json says world_size 2) and the tables are written. (The whole DAG
    under SLURM with torchrun took 951 s at load ~9 on 2 cores: the next test runs one training there.)"""
    repo = copy_repo(tmp_path / "repo", edit={"compute": {"launcher": TORCHRUN, "train_threads": 2}})
    trainings = sum(n for rule, n in _planned_counts(repo, []).items() if rule.startswith("train_"))
    start = time.perf_counter()
    run([SNAKEMAKE, "--cores", "2"], repo, timeout=1100)
    print(f"\nsmoke DAG with torchrun (2 ranks per training), snakemake --cores 2: "
          f"{time.perf_counter() - start:.1f} s")
    records = sorted((repo / "results/train").glob("*/*/seed*/run.json"))
    assert len(records) == trainings >= 6  # teacher, student, student_kd, the KD methods x (rail, sod)
    for path in records:
        _assert_world_size_2(path)
    for name in ("table1", "table2"):
        assert "|" in (repo / f"results/tables/{name}.md").read_text()


@pytest.mark.timeout(900)
def test_torchrun_training_as_one_slurm_job(slurm_cluster, tmp_path):
    """The same launcher through profiles/slurm: one training is one SLURM job of 2 CPUs running 2 ranks."""
    repo = copy_repo(tmp_path / "repo", edit={"compute": {"launcher": TORCHRUN, "train_threads": 2}})
    run_json = "results/train/rail/student/seed0/run.json"
    before = {job["id"] for job in slurm_cluster.jobs()}
    _run_on(slurm_cluster, SLURM_RUN + [run_json], repo, timeout=800)
    _assert_world_size_2(repo / run_json)
    trainings = _slurm_jobs_by_rule(slurm_cluster, before)["train_student"]
    assert [(job["state"], job["cpus"]) for job in trainings] == [("COMPLETED", "2")], trainings
