# Shared helpers: the params files every command reads, a check that needs the file system, and the
# DAG's jobs as the plan (src/aclnet_kd/workflow/plan.py) writes them: commands, outputs, params keys.
# Rules only call these; nothing here runs a job.
import os
import subprocess
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError

from aclnet_kd.workflow import plan

RUN_STARTED_NS = time.time_ns()  # outputs newer than this were written by this run (onsuccess)


def _lift_dead_lock() -> None:
    """After a kill, the same command carries on: a lock that no live run holds is lifted with Snakemake's
    own `--unlock` before Snakemake takes its lock (aclnet_kd.workflow.locks). A live run in this folder is
    left alone, and Snakemake refuses the second run as usual. Jobs that Snakemake spawns run with --nolock."""
    from aclnet_kd.workflow.locks import live_holders

    # Snakemake keeps its lock files here; nothing there (the common case) means nothing to check.
    if {"--nolock", "--unlock"} & set(sys.argv) or not any(Path(".snakemake", "locks").glob("*")):
        return
    holders = live_holders(".")
    if holders:
        print(f"snakemake: this folder is locked by a run still going: {holders} (pid, program)", file=sys.stderr)
        return
    print("snakemake: lifting the lock of a run that is no longer running (killed?); its trainings resume "
          "from last.pt", file=sys.stderr)
    snakefile = os.path.join(workflow.basedir, "Snakefile")
    subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--snakefile", snakefile, "--cores", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_lift_dead_lock()


def _configfiles() -> list[str]:
    """The `--configfile` presets of this run, in order. Snakemake documents no way to learn them (only the
    merged `config`), so this is the one place that reads its undocumented `workflow.overwrite_configfiles`
    (Snakemake 8/9). tests/workflow/test_schema.py::test_preset_via_configfile_matches_merged_params fails
    when Snakemake changes it; a missing attribute stops here with this message instead of dropping presets."""
    try:
        return list(workflow.overwrite_configfiles or ())
    except AttributeError:
        raise WorkflowError("this Snakemake no longer has workflow.overwrite_configfiles: see "
                            "workflow/rules/common.smk, _configfiles") from None


# params.yaml, then each `--configfile` preset in order: merged by Snakemake into `config` (RUN_PARAMS, the
# Snakefile), written to plan.RUN_PARAMS when the run starts, and read from there by every job. The path is the
# same whatever the presets, so a preset changes no command: only the jobs that read a changed value rerun.
PARAMS_FILES = ["params.yaml"]
for _preset in _configfiles():
    _preset = os.path.relpath(_preset)
    if _preset not in PARAMS_FILES:
        PARAMS_FILES.append(_preset)
PARAMS = f"--params {plan.RUN_PARAMS}"


def write_run_params() -> None:
    """Write the run's merged params where every job reads them, only when they differ from the file's."""
    from aclnet_kd.config import run_params_text
    from aclnet_kd.io import atomic_write_text

    text = run_params_text(RUN_PARAMS, PARAMS_FILES)
    path = Path(plan.RUN_PARAMS)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


onstart:
    write_run_params()  # not on a dry run (-n): that writes nothing

TRACKS = config["tracks"]
SEEDS = config["seeds"]
FIRST_SEED = SEEDS[0]  # the teacher and the ablations are trained once, with this seed
ABLATIONS = config["ablations"]  # run name -> --kd-weights
KD_METHODS = plan.kd_methods(config)  # run name -> its loss weights (trained at every seed; table3)
COMPUTE = config["compute"]
LAUNCHER = COMPUTE["launcher"]  # `aclnet`, or `torchrun ... -m aclnet_kd.cli` for DDP over N GPUs
CONDA_ENV = "../../envs/environment.yaml"  # relative to this folder: `--use-conda` builds it once
# complexity: one job per configured model, named by the model (results/complexity/<name>.json)
ROLE_OF_MODEL = {config["models"][role]["name"]: role for role in plan.ROLES}
if len(ROLE_OF_MODEL) != len(plan.ROLES):
    raise WorkflowError("params: models.teacher.name and models.student.name must differ")


def _check_dataset_roots() -> None:
    """What the schema cannot see: the real datasets' folders exist (before any job starts)."""
    for track, spec in TRACKS.items():
        dataset = config["datasets"][spec["dataset"]]
        if dataset["source"] in ("rail", "sod") and not Path(dataset["root"]).expanduser().is_dir():
            raise WorkflowError(
                f"params: datasets.{spec['dataset']}.root: folder '{dataset['root']}' does not exist "
                f"(source '{dataset['source']}' reads a real dataset; see docs/workflow.md)"
            )


_check_dataset_roots()

wildcard_constraints:
    track="|".join(TRACKS),
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    split="[A-Za-z0-9][A-Za-z0-9_.-]*",
    model="|".join(ROLE_OF_MODEL),


def reads(stage: str, **fields) -> dict:
    """The params values a job of ``stage`` reads (plan.Stage.all_reads), as a rule's `params:` entry:
    Snakemake reruns the rule when they change (its `params` rerun trigger), as DVC does for the same
    keys in dvc.yaml. A key that does not exist is an error, not an empty value."""
    try:
        return plan.reads(plan.STAGES[stage], config, **fields)
    except KeyError as err:
        raise WorkflowError(f"params: {err.args[0]}") from None


def code_of(stage: str, **fields) -> list:
    """The source files a job of ``stage`` runs, module by module (plan.job_code: its imports plus the loss
    modules of its own KD terms, its dataset's generator), as rule inputs: an edited module reruns exactly the
    jobs that run it. Snakemake compares a small input's checksum with the one it recorded, so a module only
    touched (a checkout) reruns nothing, as in DVC; its own `code` trigger sees only a rule's shell text."""
    try:
        return plan.job_code(plan.STAGES[stage], config, **fields)
    except KeyError as err:
        raise WorkflowError(f"params: {err.args[0]}") from None


# The command fields every job fills the same way: params files, wildcards, params values.
WILDCARDS = {name: f"{{wildcards.{name}}}" for name in ("track", "seed", "split", "dataset", "model")}


def shell_of(stage: str, **fields) -> str:
    """The shell line of ``stage``: the plan's commands, each appending to {log} (a killed attempt's lines
    stay, before the resumed one's "resumed from ...")."""
    spec = plan.STAGES[stage]
    values = {name: plan.get_key(config, key) for name, key in spec.values.items()}
    commands = plan.command(spec, **{"params": PARAMS, **values, **WILDCARDS, **fields})
    return " && ".join(f"{cmd} >> {{log}} 2>&1" for cmd in commands)


def outputs_of(stage: str, **fields) -> list:
    """The plan's outputs of ``stage`` as Snakemake output patterns (folders marked as such)."""
    return [directory(path) if out.folder else path
            for path, out in plan.output_paths(plan.STAGES[stage], **fields)]


def log_of(stage: str, **fields) -> str:
    """The plan's log of a job of ``stage`` (plan.log_path): ``fields`` filled, the rest wildcards."""
    return plan.pattern(plan.log_path(plan.STAGES[stage]), **fields)


def benchmark_of(stage: str, **fields) -> str:
    """The plan's benchmark file of a job of ``stage`` (plan.benchmark_path), as ``log_of``."""
    return plan.pattern(plan.benchmark_path(plan.STAGES[stage]), **fields)


def inputs_of(stage: str) -> list[str]:
    """The DAG's outputs under the results roots ``stage`` reads whole (plan.Stage.inputs)."""
    return outputs_under(*plan.STAGES[stage].inputs)


def prepared_dir(track: str) -> str:
    return plan.fill(plan.PREPARED, dataset=TRACKS[track]["dataset"])


def teacher_checkpoint(track: str) -> str:
    return plan.fill(plan.CHECKPOINT, track=track, run=plan.TEACHER.name, seed=FIRST_SEED)


def train_outputs(stage: str, run: str) -> list:
    files = outputs_of(stage, track="{track}", run=run, seed="{seed}")
    # config.yaml is the resolved recipe of the run: it goes into the HTML report.
    config_yaml = plan.fill(f"{plan.TRAIN_DIR}/config.yaml", track="{track}", run=run, seed="{seed}")
    # train.log is update(): Snakemake leaves it in place when the job (re)starts, so that a training
    # preempted or killed appends to the killed attempt's log (the default profile reruns incomplete jobs;
    # profiles/slurm keeps a failed job's outputs: keep-incomplete). It resumes from last.pt (plan.RESUME_STATE),
    # which is no declared output: Snakemake never deletes it.
    kept = {plan.fill(f"{plan.TRAIN_DIR}/{name}", track="{track}", run=run, seed="{seed}")
            for name in ("train.log",)}
    return [report(path, caption="../report/config.rst", category="Configuration", subcategory="{track}")
            if path == config_yaml else update(path) if path in kept else path for path in files]


TRAIN_RESOURCES = dict(mem_mb=COMPUTE["train_mem_mb"], gpu=COMPUTE["train_gpus"])


# Every output of the jobs before the report (tables and figures read subsets, by results root).
ALL_OUTPUTS = plan.all_outputs(config, skip=plan.REPORT_STAGES)


def outputs_under(*roots: str) -> list[str]:
    """The DAG's outputs inside ``roots`` (a stage that reads a whole results tree depends on these)."""
    return [p for p in ALL_OUTPUTS if any(plan.under(p, r) for r in roots)]


# The report's files (Snakemake lists them one by one for its HTML report; DVC tracks the folders).
TABLES = [f"{plan.TABLES_DIR}/{stem}.{ext}" for stem in plan.table_stems(config) for ext in ("csv", "md")]
TABLES += [f"{plan.TABLES_DIR}/{stem}.tex" for stem in plan.latex_stems(config)]  # booktabs, for a paper
FIGURES = [f"{plan.FIGURES_DIR}/{stem}.{ext}" for stem in plan.figure_stems(config) for ext in ("png", "pdf")]
FINAL = ALL_OUTPUTS + TABLES + FIGURES + [plan.PAGE]  # `rule all`: every job of every stage in the plan


def _mtimes(roots: list[str]) -> dict[str, int]:
    """st_mtime_ns of every file and folder under ``roots`` (links not followed)."""
    times = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            for path in [folder] + [os.path.join(folder, name) for name in files]:
                times[path] = os.lstat(path).st_mtime_ns
    return times


def _restore_mtimes(times: dict[str, int]) -> int:
    """Put back the recorded times wherever they changed; returns how many paths were reset. Changing a
    file's time leaves its folder's time alone, so one pass in any order restores both."""
    reset = 0
    for path, mtime_ns in times.items():
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            continue
        if now.st_mtime_ns != mtime_ns:
            os.utime(path, ns=(now.st_atime_ns, mtime_ns), follow_symlinks=False)
            reset += 1
    return reset


def _stages_written_since(times: dict[str, int], since_ns: int) -> list[str]:
    """The dvc.yaml stages (DVC addresses, `group@key`) with an output written since ``since_ns``, i.e. by
    this run: the plan names every stage dvc.yaml defines for params.yaml's values, with its outputs
    (plan.dvc_addresses), so nothing of DVC's internals is read."""
    fresh = {path for path, mtime_ns in times.items() if mtime_ns >= since_ns}
    try:
        return plan.dvc_addresses_writing(RUN_PARAMS, fresh)
    except (KeyError, IndexError, TypeError) as err:  # params.yaml lacks what a dvc.yaml group reads: so would DVC
        print(f"snakemake: not recording with DVC: dvc.yaml's stages do not resolve on params.yaml ({err!r})",
              file=sys.stderr)
        return []


def record_with_dvc() -> None:
    """`dvc commit` the stages this run wrote, so `dvc status` agrees that they are up to date, and keep
    every output's time as it was: Snakemake decides what to rerun from them.

    Only the stages this run wrote: after `snakemake <one target>` the stages downstream of it are stale,
    and DVC must keep saying so. A link cache (.dvc/config: reflink, else hardlink) can replace workspace
    files with new, newer ones, and Snakemake would then rerun everything downstream; the times are put
    back."""
    times = _mtimes(["data", "results"])
    stages = _stages_written_since(times, RUN_STARTED_NS)
    if not stages:
        return
    # Stage addresses, not output paths: one `dvc commit` writes dvc.lock once for all of them. DVC collects
    # each target anew from the templated dvc.yaml (~2 s apiece: the smoke DAG's 41 took 141 s, committing
    # all of them with no target 14 s), so a run that wrote every stage (a first run) names none.
    targets = [] if set(stages) == set(plan.dvc_addresses(RUN_PARAMS)) else stages
    if subprocess.run(["dvc", "commit", "--force", "--quiet", *targets]).returncode != 0:
        print("snakemake: `dvc commit` failed; run it by hand so that `dvc status` is clean", file=sys.stderr)
    if _restore_mtimes(times):
        subprocess.run(["dvc", "status", "--quiet"])  # re-hash once: DVC's state learns the restored times
    print(f"snakemake: recorded {len(stages)} DVC stage(s) with `dvc commit`")


onsuccess:
    # Only when the jobs read what dvc.yaml's commands read: params.yaml's values (no preset, or one that changes
    # nothing). DVC runs a preset as an experiment that sets its values in params.yaml (docs/workflow.md).
    from aclnet_kd.config import load_yaml

    if Path(".dvc").is_dir() and RUN_PARAMS == load_yaml(plan.PARAMS_FILE):
        record_with_dvc()
    elif Path(".dvc").is_dir():
        print(f"snakemake: not recording the outputs with DVC: presets {PARAMS_FILES[1:]} change params.yaml's values")
