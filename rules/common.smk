# Shared helpers: the params files every command reads, checks that need the file system, and the paths of
# the DAG (docs/architecture.md, "Paths"). Rules only call these; nothing here runs a job.
import json
import os
import subprocess
import sys
import time
from base64 import urlsafe_b64decode
from pathlib import Path

from snakemake.exceptions import WorkflowError

RUN_STARTED_NS = time.time_ns()  # outputs newer than this were written by this run (onsuccess)

# params.yaml, then each `--configfile` preset in order: the same list every `aclnet` command is given, so a
# stage sees exactly the params this DAG was built from.
PARAMS_FILES = ["params.yaml"]
for _preset in workflow.overwrite_configfiles:
    _preset = os.path.relpath(_preset)
    if _preset not in PARAMS_FILES:
        PARAMS_FILES.append(_preset)
PARAMS = " ".join(f"--params {path}" for path in PARAMS_FILES)

TRACKS = config["tracks"]
SEEDS = config["seeds"]
FIRST_SEED = SEEDS[0]  # the teacher and the ablations are trained once, with this seed
ABLATIONS = config["ablations"]  # run name -> --kd-weights
COMPUTE = config["compute"]
LATENCY = config["latency"]  # warmup / iters of the latency stage
LAUNCHER = COMPUTE["launcher"]  # `aclnet`, or `torchrun ... -m aclnet_kd.cli` for DDP over N GPUs
MODELS = ["aclnet_t", "aclnet_s"]  # the paper's two architectures (complexity columns)

# Files of one training run (results/train/<track>/<run>/seed<k>/); dvclive/ holds its curves (plots/ is a
# folder of per-metric .tsv files, see train_outputs).
TRAIN_FILES = ["best.pt", "last.pt", "config.yaml", "train.log", "run.json", "dvclive/metrics.json",
               "dvclive/params.yaml"]
# Student runs trained for every seed; the teacher and the ablations use FIRST_SEED only.
STUDENT_RUNS = ["student", "student_kd"]


def _check_params() -> None:
    """What the schema cannot see: cross references, real folders, and launcher vs GPUs."""
    for track, spec in TRACKS.items():
        name = spec["dataset"]
        if name not in config["datasets"]:
            raise WorkflowError(f"params: tracks.{track}.dataset: '{name}' is not a key of 'datasets'")
        dataset = config["datasets"][name]
        if dataset["source"] in ("rail", "sod") and not Path(dataset["root"]).expanduser().is_dir():
            raise WorkflowError(
                f"params: datasets.{name}.root: folder '{dataset['root']}' does not exist "
                f"(source '{dataset['source']}' reads a real dataset; see docs/workflow.md)"
            )
    gpus = COMPUTE["train_gpus"]
    if gpus > 1 and f"--nproc_per_node {gpus}" not in LAUNCHER and f"--nproc_per_node={gpus}" not in LAUNCHER:
        raise WorkflowError(
            f"params: compute.launcher: train_gpus is {gpus}, so training needs "
            f"'torchrun --standalone --nproc_per_node {gpus} -m aclnet_kd.cli' (got '{LAUNCHER}')"
        )
    if gpus <= 1 and LAUNCHER != "aclnet":
        raise WorkflowError(f"params: compute.launcher: '{LAUNCHER}' needs compute.train_gpus > 1 (got {gpus})")


_check_params()

wildcard_constraints:
    track="|".join(TRACKS),
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    split="[A-Za-z0-9][A-Za-z0-9_.-]*",
    model="|".join(MODELS),


def reads(*keys: str) -> dict:
    """The params values a stage reads, as a rule's `params:` entry: Snakemake reruns the rule when they
    change (its `params` rerun trigger), as DVC does for a stage's `params:` list in dvc.yaml."""
    values = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        values[key] = node
    return values


def report_reads(own_section: str) -> dict:
    """tables / figures read the seeds, the tracks, each track's dataset source and their own section."""
    sources = [f"datasets.{spec['dataset']}.source" for spec in TRACKS.values()]
    return reads("seeds", "tracks", *sources, own_section)


def dataset_of(track: str) -> str:
    return TRACKS[track]["dataset"]


def prepared_dir(track: str) -> str:
    return f"data/prepared/{dataset_of(track)}"


def train_dir(track: str, run: str, seed) -> str:
    return f"results/train/{track}/{run}/seed{seed}"


def runs(track: str) -> list[tuple[str, int]]:
    """(run, seed) of every trained model of a track, teacher first."""
    pairs = [("teacher", FIRST_SEED)]
    pairs += [(run, seed) for run in STUDENT_RUNS for seed in SEEDS]
    pairs += [(run, FIRST_SEED) for run in ABLATIONS]
    return pairs


def train_outputs(track: str, run: str, seed) -> list[str]:
    folder = train_dir(track, run, seed)
    return [f"{folder}/{name}" for name in TRAIN_FILES] + [f"{folder}/dvclive/plots"]


def eval_dirs(kind: str) -> list[str]:
    """results/<kind>/<track>/<run>/seed<k>/<split> for every (track, run, seed, test split)."""
    return [
        f"results/{kind}/{track}/{run}/seed{seed}/{split}"
        for track, spec in TRACKS.items()
        for run, seed in runs(track)
        for split in spec["test_splits"]
    ]


ALL_TRAIN = [path for track in TRACKS for run, seed in runs(track) for path in train_outputs(track, run, seed)]
ALL_METRICS = [f"{d}/metrics.json" for d in eval_dirs("evaluate")]
ALL_CURVES = [f"{d}/curves.csv" for d in eval_dirs("evaluate")]
ALL_PREDICTIONS = eval_dirs("predict")
ALL_COMPLEXITY = [f"results/complexity/{model}.json" for model in MODELS]
ALL_LATENCY = [f"results/latency/{model}.json" for model in MODELS]
ALL_PREPARED = sorted({prepared_dir(track) for track in TRACKS})

TABLES = [f"results/tables/{name}.{ext}" for name in ("table1", "table2") for ext in ("csv", "md")]
TABLES += [f"results/tables/ablation_{track}.{ext}" for track in TRACKS for ext in ("csv", "md") if ABLATIONS]
FIGURES = [
    f"results/figures/{kind}_{track}_{split}.{ext}"
    for track, spec in TRACKS.items()
    for split in spec["test_splits"]
    for kind in ("pr", "fcurve")
    for ext in ("png", "pdf")
]
FIGURES += [f"results/figures/{kind}_{track}.{ext}" for track in TRACKS for kind in ("qualitative", "training")
            for ext in ("png", "pdf")]


def forget_outdated_records(metadata: Path = Path(".snakemake/metadata")) -> None:
    """Drop Snakemake's records of outputs that something else rewrote since (dvc repro, dvc checkout).

    Snakemake reruns a job when the params it recorded for an output differ from today's. Each record
    keeps the output's time when it was written (`endtime`); if the file's time differs now, the record
    describes a file that no longer exists, and `dvc repro` with new params would look stale to
    Snakemake forever. Without the record, the output's time decides, as for any output that Snakemake
    did not write. Reads Snakemake's file-based metadata store (.snakemake/metadata, one JSON per output,
    named by the path in URL-safe base64, split into `@`-prefixed folders when longer than a file name)."""
    if not metadata.is_dir():
        return
    for record in metadata.rglob("*"):
        if not record.is_file():
            continue
        key = "".join(part.removeprefix("@") for part in record.relative_to(metadata).parts)
        try:
            output = urlsafe_b64decode(key).decode()
            endtime = json.loads(record.read_text()).get("endtime")
        except (ValueError, OSError):
            continue  # not a record of ours to judge
        marker = os.path.join(output, ".snakemake_timestamp")  # a folder output's time, as Snakemake reads it
        try:
            mtime = os.stat(marker if os.path.isdir(output) and os.path.exists(marker) else output).st_mtime
        except FileNotFoundError:
            continue  # missing output: Snakemake reruns its job anyway
        if endtime is not None and abs(mtime - endtime) > 1e-3:
            record.unlink()


if workflow.is_main_process:  # not in the per-job processes of a cluster executor
    forget_outdated_records()


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
    """DVC stages (dvc.yaml addresses) with an output written since ``since_ns``, i.e. by this run."""
    from dvc.repo import Repo

    fresh = {path for path, mtime_ns in times.items() if mtime_ns >= since_ns}
    with Repo(".") as repo:
        return [stage.addressing for stage in repo.index.stages
                if any(path == out.def_path or path.startswith(out.def_path.rstrip("/") + "/")
                       for out in stage.outs for path in fresh)]


def record_with_dvc() -> None:
    """`dvc commit` the stages this run wrote, so `dvc status` agrees that they are up to date, and keep
    every output's time as it was: Snakemake decides what to rerun from them.

    Only the stages this run wrote: after `snakemake <one target>` the stages downstream of it are stale,
    and DVC must keep saying so. With `cache.type = copy` (.dvc/config) DVC leaves workspace files alone,
    but a link cache (a user's own config) replaces them with new, newer files, and Snakemake would then
    rerun everything downstream; the times are put back either way."""
    times = _mtimes(["data", "results"])
    stages = _stages_written_since(times, RUN_STARTED_NS)
    if not stages:
        return
    if subprocess.run(["dvc", "commit", "--force", "--quiet", *stages]).returncode != 0:
        print("snakemake: `dvc commit` failed; run it by hand so that `dvc status` is clean", file=sys.stderr)
    if _restore_mtimes(times):
        subprocess.run(["dvc", "status", "--quiet"])  # re-hash once: DVC's state learns the restored times
    print(f"snakemake: recorded {len(stages)} DVC stage(s) with `dvc commit`")


onsuccess:
    # Only when the commands match dvc.yaml's, i.e. with params.yaml alone (DVC reads no presets: a preset is
    # merged into params.yaml for DVC, docs/workflow.md).
    if Path(".dvc").is_dir() and PARAMS_FILES == ["params.yaml"]:
        record_with_dvc()
    elif Path(".dvc").is_dir():
        print(f"snakemake: not recording the outputs with DVC: presets {PARAMS_FILES[1:]} are not in params.yaml")
