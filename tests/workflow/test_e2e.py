"""Real end-to-end runs of the smoke preset: one through Snakemake (the session's `smoke_run`, shared with
test_external_e2e.py and read only; the tests that change it work on a copy, `snake_repo`, and build on each
other in file order), one through `dvc repro` (module-scoped; one KD method instead of the preset's five), each
in a throw-away copy of the repository.

Checks: outputs; whichever front end ran last, the other sees nothing to do (its time is printed, not asserted: these machines are noisy); changing a
table setting reruns only the tables in both; `dvc metrics diff` between two commits; `dvc push` /
`dvc pull` against a local remote restores byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN_DIR, copy_repo, copy_run, run, timed, tool_env

from aclnet_kd.losses.registry import TERMS
from aclnet_kd.workflow import plan

# The smoke DAG trains 16 models (Table III's KD methods included): past the suite's 600 s per test on a
# loaded 2-core machine, so these tests (whose fixtures run the whole DAG) get more.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SNAKEMAKE = str(BIN_DIR / "snakemake")
DVC = str(BIN_DIR / "dvc")


def _sha256_tree(root: Path, folders: list[str]) -> dict[str, str]:
    digests = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            # not data: Snakemake's folder marker, and the .gitignore files DVC writes beside its outputs
            if path.is_file() and path.name not in (".snakemake_timestamp", ".gitignore"):
                digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _planned_rules(repo: Path, *targets: str) -> set[str]:
    """Rules `snakemake -n` would run now (for ``targets``, or the whole DAG)."""
    out = run([SNAKEMAKE, "-n", "--cores", "1", *targets], repo, timeout=60).stdout
    return {line.split()[-1].rstrip(":") for line in out.splitlines()
            if line.startswith(("rule ", "localrule "))} - {"all"}


def _dvc_changed(repo: Path) -> dict:
    """`dvc status` as {stage: changes}; {} when everything is up to date."""
    return json.loads(run([DVC, "status", "--json"], repo, timeout=60).stdout or "{}")


def _set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _assert_both_idle(repo: Path) -> None:
    """`dvc status` is clean and `snakemake -n` has nothing to do. Their times are printed, not asserted:
    these machines are noisy, and the no-op times are measured in docs/workflow.md."""
    proc, seconds = timed([DVC, "status", "--json"], repo, timeout=60)
    assert json.loads(proc.stdout or "{}") == {}, proc.stdout[:3000]
    print(f"\nno-op dvc status: {seconds:.2f} s")
    proc, seconds = timed([SNAKEMAKE, "-n", "--cores", "1"], repo, timeout=60)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    print(f"no-op snakemake -n: {seconds:.2f} s")


@pytest.fixture(scope="module")
def snake_repo(smoke_run, tmp_path_factory):
    """The shared Snakemake smoke run, copied: the tests below change its params, outputs and git."""
    return copy_run(smoke_run, tmp_path_factory.mktemp("snakemake") / "repo")


# `dvc repro` runs one stage at a time: the DVC copy trains one KD method (CIRKD, the one with a trained
# head and a memory bank) instead of the smoke preset's five, which the Snakemake run trains and checks.
# test_dvc_yaml.py checks that both front ends plan every KD method's jobs alike.
DVC_KD_METHODS = ["kd_cirkd"]


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory):
    kd_methods = {name: entry for name, entry in _smoke_kd_methods().items() if name in DVC_KD_METHODS}
    repo = copy_repo(tmp_path_factory.mktemp("dvc") / "repo", replace={"kd_methods": kd_methods})
    _, seconds = timed([DVC, "repro", "--quiet"], repo, timeout=1200)
    print(f"\nsmoke run through dvc repro: {seconds:.1f} s")
    return repo, seconds


# ---- Snakemake first -------------------------------------------------------------------------------------

def test_snakemake_smoke_run_writes_tables_and_figures(smoke_run):
    repo = smoke_run
    for name in ("table1", "table2", "differences"):
        assert "|" in (repo / f"results/tables/{name}.md").read_text()
    # one smoke epoch cannot show a plateau: run.json says so, and the tables flag the run
    record = json.loads((repo / "results/train/rail/student/seed0/run.json").read_text())
    assert record["converged"] is False and record["plateau"]["epochs"] == 1
    assert "ACLNet-S†" in (repo / "results/tables/table1.md").read_text()
    assert "no interval can be given" in (repo / "results/tables/differences.md").read_text()  # seeds: [0]
    assert (repo / "results/figures/pr_rail_test.png").stat().st_size > 0
    assert (repo / "results/figures/training_sod.pdf").stat().st_size > 0
    assert any((repo / "results/predict/sod/student_kd/seed0/NJU2K").glob("*.png"))
    metrics = json.loads((repo / "results/evaluate/rail/student_kd/seed0/test/metrics.json").read_text())
    assert {"Sm", "MAE", "maxF", "maxE"} <= set(metrics)
    # where each record came from: the commit of the code that ran, the packages
    assert record["provenance"]["git"]["commit"] == metrics["provenance"]["git"]["commit"] != "not a git checkout"
    assert metrics["provenance"]["versions"]["pysodmetrics"] and "date" not in metrics["provenance"]
    assert "Code: every row of ours was trained and evaluated at commit" in (repo / "results/tables/table1.md").read_text()
    assert r"\toprule" in (repo / "results/tables/table2.tex").read_text()
    assert (repo / "results/figures/ecurve_sod_NJU2K.png").stat().st_size > 0
    _assert_table3(repo, list(_smoke_kd_methods()))
    # the smoke preset trains every classic term of the registry through the DAG (the release's in student_kd)
    trained = {term for entry in _smoke_kd_methods().values() for term in entry}
    assert trained == {term.name for term in TERMS if not term.in_release}


def test_smoke_student_detects_through_checkpoint_and_onnx(smoke_run, tmp_path):
    """The Done-when of the detector: run.json holds the operating point, metrics.json the binary metrics at
    it, and the smoke student's checkpoint and its ONNX export give the same masks and defects.csv."""
    repo = smoke_run
    run_dir = repo / "results/train/rail/student_kd/seed0"
    op = json.loads((run_dir / "run.json").read_text())["operating_point"]
    assert 0 < op["threshold"] <= 1 and op["split"] == "val" and op["rule"] == "max_f"
    metrics = json.loads((repo / "results/evaluate/rail/student_kd/seed0/test/metrics.json").read_text())
    assert metrics["op_threshold"] == round(op["threshold"], 6)
    assert all(0 <= metrics[k] <= 1 for k in ("op_IoU", "op_Dice", "op_precision", "op_recall", "op_detection_rate"))
    assert "defects found" in (repo / "results/tables/operating_point.md").read_text()
    aclnet, rgb = str(BIN_DIR / "aclnet"), repo / "data/raw/synthetic-rail/test/rgb"
    run([aclnet, "export", "--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path / "s.onnx")], repo, timeout=600)
    assert json.loads((tmp_path / "s.json").read_text())["operating_point"] == op
    run([aclnet, "predict", "--checkpoint", str(run_dir / "best.pt"), "--rgb-dir", str(rgb), "--out",
         str(tmp_path / "torch"), "--binary", "--device", "cpu"], repo)
    run([aclnet, "predict", "--onnx", str(tmp_path / "s.onnx"), "--rgb-dir", str(rgb), "--out",
         str(tmp_path / "onnx"), "--binary"], repo)
    csv = (tmp_path / "torch" / "defects.csv").read_text()
    assert (tmp_path / "onnx" / "defects.csv").read_text() == csv and len(csv.splitlines()) >= 4  # header + 3 images
    masks = sorted(p.name for p in (tmp_path / "torch").glob("*.png"))
    assert len(masks) == 3 and masks == sorted(p.name for p in (tmp_path / "onnx").glob("*.png"))
    for name in masks:
        assert (tmp_path / "torch" / name).read_bytes() == (tmp_path / "onnx" / name).read_bytes()


def _metric_values(path: Path) -> dict[str, float]:
    """The numbers of a metrics.json (its provenance, which names the copy's own commit, aside)."""
    return {key: value for key, value in json.loads(path.read_text()).items() if isinstance(value, (int, float))}


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def test_kill_9_then_the_same_command_resumes_and_ends_as_uninterrupted(smoke_run, tmp_path):
    """`kill -9` of the whole run during a training, then the very same command: the dead lock is lifted, the
    killed training resumes from last.pt (its log keeps the killed attempt's lines), and the distilled
    student's metrics equal the uninterrupted smoke run's. A second run started while the first is alive is
    still refused. The target is the rail ACLNet-S*'s evaluation, in a copy of the finished smoke run with the
    trainings of its chain deleted (the teacher, the student): either can be the one killed, and the data are
    reused."""
    uninterrupted = smoke_run
    target = "results/evaluate/rail/student_kd/seed0/test/metrics.json"
    repo = copy_run(smoke_run, tmp_path / "repo")
    # A changed `train` section reruns every training that reads it; a finished run kept would be a no-op.
    for run_name in ("teacher", "student_kd"):
        shutil.rmtree(repo / f"results/train/rail/{run_name}/seed0")
    # last.pt after every step, so a kill lands after the first one (runtime key: the result is the same).
    _set_param(repo, "train", "checkpoint_every", 1)
    assert _planned_rules(repo, target) == {"train_teacher", "train_student_kd", "predict_evaluate"}
    cmd = [SNAKEMAKE, "--cores", "2", target]
    proc = subprocess.Popen(cmd, cwd=repo, env=tool_env(repo.parent), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: any((repo / ".snakemake/locks").glob("*")), 120, "lock", proc)
        second = run(cmd, repo, timeout=120, check=False)
        assert second.returncode != 0 and "locked by a run still going" in second.stderr, second.stderr[-3000:]
        unfinished = lambda: [p.parent for p in (repo / "results/train").glob("*/*/seed*/last.pt")
                              if not (p.parent / "run.json").exists()]
        _wait_for(lambda: bool(unfinished()), 600, "training with a last.pt", proc)
        killed = unfinished()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    out = run(cmd, repo, timeout=900)   # the same command, nothing by hand
    assert "lifting the lock" in out.stderr, out.stderr[-3000:]
    resumed = [d for d in killed if "resumed from" in (d / "train.log").read_text()]
    assert resumed, f"none of {killed} resumed"
    assert (resumed[0] / "train.log").read_text().index("resumed from") > 0   # the killed attempt's lines first
    assert _metric_values(repo / target) == _metric_values(uninterrupted / target)


def test_results_page_in_chromium(smoke_run, tmp_path):
    """The DAG's results/index.html, in headless Chromium with no network: Tables I and II with their numbers
    (our ACLNet-S* row of each), the verdicts and every figure; the page requested nothing."""
    from browser_helper import Dom, dump_dom

    repo = smoke_run
    rendered, requests = dump_dom(repo / "results/index.html", tmp_path / "browser")
    dom = Dom(rendered)
    assert requests == []
    shown = [row for table in dom.tables for row in table]
    for table in ("table1", "table2"):
        ours = next(line for line in (repo / f"results/tables/{table}.md").read_text().splitlines()
                    if line.startswith("| ACLNet-S*") and "| ours" in line)
        assert [c.strip() for c in ours.strip().strip("|").split("|")] in shown, table
    assert dom.text.count("Verdict.") >= 2
    assert {img["alt"] for img in dom.images} == {p.stem for p in (repo / "results/figures").glob("*.png")}


def _smoke_kd_methods() -> dict[str, dict]:
    """The smoke preset's KD-method runs: {run: {term: weight}}."""
    from conftest import REPO_ROOT

    return yaml.safe_load((REPO_ROOT / "config/smoke.yaml").read_text())["kd_methods"]


def _assert_table3(repo: Path, methods: list[str]) -> None:
    """Every KD method of ``methods`` (the run's params.yaml) trained, evaluated and ranked in table3 on both
    tracks, with its time per epoch; FitNet's adapters and CIRKD's head were optimised (run.json kd_params),
    and the figures exist."""
    import pandas as pd

    assert list(yaml.safe_load((repo / "params.yaml").read_text())["kd_methods"]) == methods
    frame = pd.read_csv(repo / "results/tables/table3_kd_methods.csv")
    for track, split in (("rail", "test"), ("sod", "NJU2K")):
        rows = frame[(frame["track"] == track) & (frame["split"] == split)]
        assert set(rows["run"]) == {"student", "student_kd", *methods}, rows
        assert (rows["seconds_per_epoch"] > 0).all()
        assert (repo / f"results/figures/kd_methods_{track}.png").stat().st_size > 0
    if "kd_fitnet" in methods:
        fitnet = json.loads((repo / "results/train/rail/kd_fitnet/seed0/run.json").read_text())
        assert fitnet["kd_params"] == 349120 and fitnet["kd_weights"]["fitnet"] == 1.0
        assert fitnet["kd_weights"]["cld"] == 0
    assert "Table III" in (repo / "results/tables/table3_kd_methods.md").read_text()
    # issue 25: the columns that say what the study could see, and CIRKD (a dense-prediction baseline)
    assert {"mde", "vs_paper"} <= set(frame.columns) and "kd_cirkd" in methods
    cirkd = json.loads((repo / "results/train/rail/kd_cirkd/seed0/run.json").read_text())
    assert cirkd["kd_params"] == 2 * 64 * 64 + 2 * 64  # CIRKD's projection head on am1, trained with the student
    differences = pd.read_csv(repo / "results/tables/differences.csv")
    assert {"mde", "vs_paper"} <= set(differences.columns) and set(differences["vs_paper"]) == {"—"}  # n = 1


def test_both_front_ends_idle_after_snakemake(smoke_run):
    """The run ends with `dvc commit`, which must leave the outputs' times alone."""
    _assert_both_idle(smoke_run)


# ---- what a preset or a code edit reruns (issue 23), each case in a scratch copy of the finished run ------------

def _planned_jobs(repo: Path, extra: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job `snakemake -n` would run now."""
    out = run([SNAKEMAKE, "-n", "--cores", "1", *extra], repo, timeout=120).stdout
    jobs: list[tuple[str, dict]] = []
    for line in out.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):$", line)
        if head:
            jobs.append((head.group(1), {}))
        elif jobs and line.startswith("    wildcards: "):
            jobs[-1][1].update(item.strip().split("=", 1) for item in line.split(": ", 1)[1].split(","))
    return [job for job in jobs if job[0] != "all"]


def test_presets_rerun_only_the_jobs_reading_their_values(smoke_run, tmp_path):
    """A preset changes no command (every job reads results/params.yaml): one that adds a KD method plans
    its trainings and what reads them, nothing of the finished run; one that changes a value only the tables
    read plans the tables and the page. DVC runs the same preset as an experiment (`aclnet params --dvc-set`
    -> `dvc exp run -S`), with no hand merge: the tables and the page only."""
    repo = copy_run(smoke_run, tmp_path / "repo")
    (repo / "config/more-kd.yaml").write_text("kd_methods:\n  kd_at_half: {at: 0.5}\n")
    jobs = _planned_jobs(repo, ("--configfile", "config/more-kd.yaml"))
    assert {rule for rule, _ in jobs} == {"train_kd_method", "predict_evaluate", "tables", "figures", "page"}, jobs
    assert {(rule, w["track"]) for rule, w in jobs if rule == "train_kd_method" and w["run"] == "kd_at_half"} == {
        ("train_kd_method", "rail"), ("train_kd_method", "sod")}
    assert all(w["run"] == "kd_at_half" for rule, w in jobs if rule in ("train_kd_method", "predict_evaluate"))
    assert sum(rule == "predict_evaluate" for rule, _ in jobs) == 2  # rail/test, sod/NJU2K

    (repo / "config/decimals.yaml").write_text("tables: {decimals: 2}\n")
    assert _planned_rules(repo, "--configfile", "config/decimals.yaml") == {"tables", "page"}
    overrides = run([str(BIN_DIR / "aclnet"), "params", "--params", "params.yaml", "--params", "config/decimals.yaml",
                     "--dvc-set"], repo).stdout
    assert overrides.split() == ["-S", "++tables.decimals=2"]
    out = run([DVC, "exp", "run", *shlex.split(overrides)], repo, timeout=600).stdout
    assert set(re.findall(r"Running stage '([^']+)'", out)) == {"tables", "page"}, out[-3000:]
    assert yaml.safe_load((repo / "params.yaml").read_text())["tables"]["decimals"] == 2


def test_code_edits_rerun_the_jobs_running_the_module(smoke_run, tmp_path):
    """Code deps per job, module by module: an edit to cld.py plans the distilled students (ACLNet-S*: its
    terms) and what reads them in Snakemake; DVC, whose one KD-method stage definition lists every loss
    module, sees the KD trainings, never prepare, the teachers, the plain students, complexity or latency. An
    edit to synthetic_rail.py touches nothing on the SOD track. The old text back (a newer time, the same
    content) leaves both idle: they compare contents."""
    repo = copy_run(smoke_run, tmp_path / "repo")
    cld = repo / "src/aclnet_kd/losses/cld.py"
    original = cld.read_text()
    cld.write_text(original + "\n_EDITED = True\n")
    jobs = _planned_jobs(repo)
    assert {rule for rule, _ in jobs} == {"train_student_kd", "predict_evaluate", "tables", "figures", "page"}, jobs
    assert sorted(w["track"] for rule, w in jobs if rule == "train_student_kd") == ["rail", "sod"]
    assert {w["run"] for rule, w in jobs if rule == "predict_evaluate"} == {"student_kd"}
    changed = _dvc_changed(repo)
    methods = {f"train_kd_method_{track}@{run}-0" for track in ("rail", "sod") for run in _smoke_kd_methods()}
    assert set(changed) == {"train_student_kd_rail@0", "train_student_kd_sod@0"} | methods, changed
    assert "src/aclnet_kd/losses/cld.py" in json.dumps(changed["train_student_kd_rail@0"])
    cld.write_text(original)
    _assert_both_idle(repo)

    generator = repo / "src/aclnet_kd/data/synthetic_rail.py"
    generator.write_text(generator.read_text() + "\n_EDITED = True\n")
    jobs = _planned_jobs(repo)
    assert ("prepare", {"dataset": "synthetic-rail"}) in jobs
    assert not [job for job in jobs if job[1].get("track") == "sod" or job[1].get("dataset") == "synthetic-sod"]
    assert set(_dvc_changed(repo)) == {"prepare_rail"}


def test_table_setting_reruns_only_tables(snake_repo):
    repo = snake_repo
    before = (repo / "results/tables/table1.md").read_text()
    _set_param(repo, "tables", "decimals", 2)
    assert _planned_rules(repo) == {"tables", "page"}  # and the results page, which shows the tables
    assert set(_dvc_changed(repo)) == {"tables"}
    out = run([SNAKEMAKE, "--cores", "2"], repo, timeout=300).stdout
    assert (repo / "results/tables/table1.md").read_text() != before
    assert "recorded 2 DVC stage(s)" in out, out[-2000:]  # tables, page
    _assert_both_idle(repo)


def test_dvc_repro_after_snakemake_then_touch_leaves_both_idle(snake_repo):
    """Snakemake recorded the tables with the old setting; DVC reruns them with a new one. Snakemake's own
    record is then outdated, and it plans the tables again; `snakemake --touch` (the one command after
    switching front ends, docs/workflow.md) records today's params without running anything."""
    repo = snake_repo
    _set_param(repo, "tables", "decimals", 4)
    out = run([DVC, "repro"], repo, timeout=300).stdout
    assert out.count("Running stage") == 2 and "Running stage 'tables'" in out, out[-2000:]
    assert "Running stage 'page'" in out, out[-2000:]  # the page shows the new tables
    table = (repo / "results/tables/table1.md").read_text()
    assert _planned_rules(repo) == {"tables", "page"}  # Snakemake's record still has decimals 2
    run([SNAKEMAKE, "--touch", "--cores", "1"], repo, timeout=120)
    assert (repo / "results/tables/table1.md").read_text() == table  # touched, not rerun
    _assert_both_idle(repo)


def test_kd_setting_invalidates_only_distilled_students(snake_repo):
    """Only the runs with --kd on read `kd`: the teacher and the plain student stay up to date."""
    repo = snake_repo
    tau = yaml.safe_load((repo / "params.yaml").read_text())["kd"]["tau"]
    _set_param(repo, "kd", "tau", tau + 0.25)
    planned = _planned_rules(repo)
    assert "train_student_kd" in planned and not {"train_teacher", "train_student", "prepare"} & planned
    methods = {f"train_kd_method_{track}@{run}-0" for track in ("rail", "sod") for run in _smoke_kd_methods()}
    assert set(_dvc_changed(repo)) == {"train_student_kd_rail@0", "train_student_kd_sod@0"} | methods
    _set_param(repo, "kd", "tau", tau)
    _assert_both_idle(repo)


def test_metrics_diff_between_commits(snake_repo):
    """Commit a run, change how maps are made, rerun one model's evaluation, commit: `dvc metrics diff`
    shows it, and DVC still reports what this targeted run left stale."""
    repo = snake_repo
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "run 1"], repo)
    tracked = run(["git", "ls-files", "results"], repo).stdout.split()
    assert "results/evaluate/rail/student_kd/seed0/test/metrics.json" in tracked  # cache: false -> git
    assert not any(name.endswith(".pt") for name in tracked)                    # checkpoints -> DVC
    _set_param(repo, "predict", "protocol", "release_minmax")
    target = "results/evaluate/rail/student_kd/seed0/test/metrics.json"
    run([SNAKEMAKE, "--cores", "2", target], repo, timeout=300)
    changed = _dvc_changed(repo)
    assert "predict_evaluate_rail@student_kd-0-test" not in changed  # rerun and recorded
    assert {"tables", "figures", "predict_evaluate_rail@student-0-test"} <= set(changed)  # stale, not hidden
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "run 2: release_minmax maps"], repo)
    diff = json.loads(run([DVC, "metrics", "diff", "HEAD~1", "HEAD", "--json"], repo, timeout=60).stdout)
    assert target in diff and diff[target], diff
    assert all("old" in v and "new" in v for v in diff[target].values())


def test_push_pull_round_trip(snake_repo, tmp_path):
    """Push, delete the outputs and the cache, then do what a fresh clone does: git checkout (the small
    `cache: false` metrics and plots are in git) and `dvc pull` (everything else, but the trainings'
    last.pt: resume state, which DVC does not track)."""
    repo = snake_repo
    run([DVC, "remote", "add", "--local", "-d", "store", str(tmp_path / "remote")], repo)
    run([DVC, "push", "--quiet"], repo, timeout=300)
    folders = ["data/prepared", "results/train", "results/predict", "results/evaluate", "results/tables"]
    before = {name: digest for name, digest in _sha256_tree(repo, folders).items()
              if not name.endswith("/" + plan.RESUME_STATE)}
    assert any(name.endswith("best.pt") for name in before) and any("data/prepared" in n for n in before)
    for folder in ("data/prepared", "results/train", "results/predict", "results/tables"):
        shutil.rmtree(repo / folder)
    shutil.rmtree(repo / ".dvc" / "cache")
    run(["git", "checkout", "-q", "HEAD", "--", "results"], repo)
    run([DVC, "pull", "--quiet"], repo, timeout=300)
    after = _sha256_tree(repo, folders)
    assert after == before


# ---- DVC first --------------------------------------------------------------------------------------------

def test_dvc_repro_smoke_run(dvc_repo):
    repo, _ = dvc_repo
    assert "|" in (repo / "results/tables/table2.md").read_text()
    assert (repo / "results/figures/pr_sod_NJU2K.png").stat().st_size > 0
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert "tables" in lock["stages"] and "predict_evaluate_teacher_rail@test" in lock["stages"]
    _assert_table3(repo, DVC_KD_METHODS)


def test_both_front_ends_idle_after_dvc_repro(dvc_repo):
    repo, _ = dvc_repo
    _assert_both_idle(repo)
