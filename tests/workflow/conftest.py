"""Helpers for the workflow tests: throw-away copies of the repository and the two front ends' DAGs.

A copy holds the working tree's files (``git ls-files``: tracked + untracked-not-ignored), its own git
repository, and no .venv: the tools come from this interpreter's bin dir, put first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aclnet_kd.workflow import plan

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent


def tool_env(home: Path | None = None) -> dict[str, str]:
    env = os.environ.copy()
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env.update({
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "CI": "1",                      # DVC's updater stays quiet under CI
        "MPLBACKEND": "Agg",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "OMP_NUM_THREADS": "1",
    })
    if home is not None:
        # DVC keeps its per-repo state database under the site cache dir: keep it inside the test's tmp dir.
        env["DVC_SITE_CACHE_DIR"] = str(home / "dvc-site-cache")
        env["DVC_GLOBAL_CONFIG_DIR"] = str(home / "dvc-global")
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run a tool in a copy; on failure show the end of its output (and of the failing job's log)."""
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(cwd.parent), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def timed(cmd: list[str], cwd: Path, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = run(cmd, cwd, **kwargs)
    return proc, time.perf_counter() - start


def working_tree_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return sorted({name for name in out.split("\0") if name and (REPO_ROOT / name).is_file()})


def copy_repo(dest: Path, preset: str | None = "config/smoke.yaml", edit: dict | None = None,
              files: list[str] | None = None, validate: bool = True, replace: dict | None = None) -> Path:
    """Copy the working tree into ``dest`` (a git repo with one commit). A preset is merged INTO params.yaml,
    the way a DVC user applies one (docs/workflow.md), so Snakemake and DVC run the very same commands.
    ``edit`` is deep-merged over the result; ``replace`` then sets whole top-level keys (a mapping replaced,
    not merged into the preset's)."""
    from aclnet_kd.config import deep_merge, load_params

    dest.mkdir(parents=True)
    if files:  # the package's modules too: every rule lists the ones its jobs run as inputs (plan.job_code)
        files = list(files) + [name for name in working_tree_files() if name.startswith("src/") and name not in files]
    for name in files or working_tree_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    params = load_params([dest / "params.yaml"] + ([dest / preset] if preset else []), validate=validate)
    if edit:
        params = deep_merge(params, edit)
    params.update(replace or {})
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "copy"], dest)
    return dest


def _link_or_copy(src: str, dst: str) -> None:
    """Checkpoints and DVC's cache files are hard links: gigabytes the stages only ever replace (a new file
    renamed into place) or delete, never write in place. Every other file is a copy, times kept."""
    if src.endswith(".pt") or f"{os.sep}.dvc{os.sep}cache{os.sep}" in src:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def copy_run(run_repo: Path, dest: Path) -> Path:
    """A copy of a finished run (outputs, Snakemake's and DVC's records, git) for a test that changes it. The
    copy keeps every file's time, from which Snakemake decides what to rerun; DVC rehashes the copy's outputs."""
    shutil.copytree(run_repo, dest, symlinks=True, copy_function=_link_or_copy)
    return dest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke DAG, run once per session through Snakemake and shared by every e2e module (test_e2e.py,
    test_external_e2e.py): READ ONLY. A test that changes files, params or git in it works on
    ``copy_run(smoke_run, tmp_path / "repo")``."""
    repo = copy_repo(tmp_path_factory.mktemp("smoke") / "repo")
    _, seconds = timed([str(BIN_DIR / "snakemake"), "--cores", "2"], repo, timeout=1200)
    print(f"\nsmoke run through Snakemake (shared by the session): {seconds:.1f} s")
    return repo


# `> log 2>&1` (or `>> log 2>&1`) after each command of a job: Snakemake-only, dropped before comparing.
LOG_REDIRECT = re.compile(r"\s*>>?\s*\S+\s+2>&1")
FLAG = re.compile(r"\s+\(\w+\)$")


# Snakemake's jobs read the run's merged params (plan.RUN_PARAMS: params.yaml + presets), DVC's params.yaml
# (where an experiment sets a preset's values): the one word in which the two front ends' commands differ.
SNAKEMAKE_PARAMS = (f"--params {plan.RUN_PARAMS}", f"--params {plan.PARAMS_FILE}")


def snakemake_jobs(workdir: Path, extra: list[str] | None = None) -> list[dict]:
    """Every job of the DAG as Snakemake plans it (`-n --forceall -p`): rule, command (``cmd``: its params file
    written as dvc.yaml's, SNAKEMAKE_PARAMS; ``raw_cmd``: as Snakemake runs it), inputs, outputs, wildcards."""
    proc = run([str(BIN_DIR / "snakemake"), "-n", "--forceall", "--printshellcmds", "--cores", "1",
                *(extra or [])], workdir, timeout=120)
    jobs, job = [], None
    for line in proc.stdout.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):$", line)
        if head:
            job = {"rule": head.group(1), "input": [], "output": [], "cmd": None, "wildcards": {}}
            jobs.append(job)
        elif job is not None and re.match(r"^    (input|output): ", line):
            key, _, value = line.strip().partition(": ")
            # a flagged file is printed with its flag, e.g. "last.pt (update)": keep the path
            job[key] = [FLAG.sub("", item.strip()) for item in value.split(",") if item.strip()]
        elif job is not None and line.startswith("    wildcards: "):
            pairs = [item.strip().partition("=") for item in line.split(": ", 1)[1].split(",")]
            job["wildcards"] = {key: value for key, _, value in pairs}
        elif job is not None and line.startswith("Shell command: "):
            job["raw_cmd"] = LOG_REDIRECT.sub("", line[len("Shell command: "):]).strip()
            job["cmd"] = job["raw_cmd"].replace(*SNAKEMAKE_PARAMS)
    return [job for job in jobs if job["rule"] != "all"]


def dvc_stages(workdir: Path) -> list[dict]:
    """Every stage of dvc.yaml as DVC resolves it: name, command, file deps, outs (metrics and plots too)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    stages = []
    with Repo(str(workdir)) as repo:
        for stage in repo.index.stages:
            stages.append({
                "name": stage.name,
                "cmd": stage.cmd,
                "deps": [str(d.def_path) for d in stage.deps if not isinstance(d, ParamsDependency)],
                "params": sorted(k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params),
                "outs": [str(o.def_path) for o in stage.outs],
            })
    return stages


def under(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# ---- a one-node SLURM cluster (tests/workflow/test_scaleout.py) --------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """munged + slurmctld + slurmd in a temp folder (slurm_cluster.py), stopped afterwards. Skips when Debian's
    `slurm-wlm` / `munge` are not installed, unless ACLNET_REQUIRE_SLURM=1 (CI: .ci/run installs them), where
    their absence fails the tests."""
    from slurm_cluster import SlurmCluster, missing_programs

    missing = missing_programs()
    if missing:
        reason = (f"SLURM test cluster: programs {missing} not found; install Debian's `slurm-wlm` and `munge` "
                  "(apt-get install slurm-wlm munge)")
        if os.environ.get("ACLNET_REQUIRE_SLURM") == "1":
            pytest.fail(f"ACLNET_REQUIRE_SLURM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield cluster
    finally:
        cluster.stop()
        left = cluster.leftovers()
        assert not left, f"processes of the test SLURM cluster still running: {left}"
