"""Where `make run`'s time and disk go: the demo's own pieces, timed in one run (issue 24).

1. **Training epochs** of the demo's plain student (params.yaml's recipe, one thread as each workflow training
   runs), every epoch split into its train steps, validation and checkpoint writes (best.pt + last.pt), with
   the bytes written. Twice: last.pt at every epoch end (`checkpoint_every_s: 0`, the policy before issue 24)
   and with params.yaml's `train.checkpoint_every_s`. The ratios compare the two.
2. **One predict+evaluate job**: the plan's two `aclnet` commands, each its own process as in the workflow,
   and the start-up of one such process (python, torch and the package imported, nothing run). Then four
   such jobs packed two ways on 2 cores: one after another at `evaluate.workers: 2` (the job's threads), and
   two side by side at `workers: 1` (params.yaml's demo value).
3. **The report and the job seconds** of a finished run folder (`--run-dir`, e.g. a clone after `make run`):
   `snakemake --report` timed there, and the seconds of every job from its Snakemake benchmark files
   (results/benchmarks/), summed per kind of job, with the disk of results/, data/ and .dvc/cache.
   Skipped without --run-dir.

Everything is on the synthetic demo data (params.yaml's synthetic-rail, generated into a temp folder). The CPU
is printed first: wall times depend on it and on the machine's load; bytes do not.

    python benchmarks/demo_pieces.py                          # ~2 min on 2 cores
    python benchmarks/demo_pieces.py --epochs 6 --run-dir /path/to/clone-after-make-run
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIECES = ("train", "validate", "checkpoint", "best_in_memory")
STARTUP_IMPORTS = {  # what each command of the predict_evaluate job imports before it reads a file
    "predict": "torch, aclnet_kd.cli, aclnet_kd.deploy.predict_command, aclnet_kd.evaluate.predict, aclnet_kd.models",
    "evaluate": "aclnet_kd.cli, aclnet_kd.evaluate.evaluate, aclnet_kd.data",
}


def prepare(params: dict, root: Path) -> Path:
    """params.yaml's rail dataset (synthetic), prepared into ``root`` as the workflow's `prepare` job does."""
    name = params["tracks"]["rail"]["dataset"]
    subprocess.run([sys.executable, "-m", "aclnet_kd.cli", "prepare", "--params", str(REPO / "params.yaml"),
                    "--dataset", name, "--out", str(root / name)], check=True, stdout=subprocess.DEVNULL)
    return root / name


class Timer:
    """Seconds and bytes of the training loop's pieces, by wrapping its module-level functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.bytes_written: dict[str, int] = defaultdict(int)

    def wrap(self, loop, name: str, piece: str) -> None:
        original = getattr(loop, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[piece] += time.perf_counter() - started

        setattr(loop, name, timed)

    def count_saves(self, loop) -> None:
        original = loop.atomic_save

        def counted(obj, path):
            original(obj, path)
            self.bytes_written[Path(path).name] += Path(path).stat().st_size

        loop.atomic_save = counted


def time_training(params: dict, data: Path, out: Path, epochs: int, every_s: float) -> tuple[Timer, float]:
    """One plain-student training of ``epochs`` epochs, its pieces timed; returns (timer, total seconds)."""
    import importlib

    import aclnet_kd.train.loop as loop_module
    from aclnet_kd.config import deep_merge
    from aclnet_kd.train.recipe import resolve_recipe

    loop = importlib.reload(loop_module)  # fresh, unwrapped functions for each policy
    timer = Timer()
    for name, piece in (("train_epoch", "train"), ("evaluate_on_val", "validate"),
                        ("save_checkpoint", "checkpoint"), ("keep_best", "best_in_memory")):
        timer.wrap(loop, name, piece)
    timer.count_saves(loop)
    edit = {"train": {"epochs": epochs, "checkpoint_every_s": every_s}}
    recipe = resolve_recipe(deep_merge(params, edit), role="student", seed=0, track="rail")
    started = time.perf_counter()
    loop.train(recipe, data, out)
    return timer, time.perf_counter() - started


def report_training(label: str, timer: Timer, total: float, epochs: int) -> None:
    pieces = sum(timer.seconds[p] for p in PIECES)
    print(f"\n{label}: {epochs} epochs in {total:.1f} s ({total / epochs:.2f} s/epoch; start-up and end "
          f"{total - pieces:.1f} s)")
    for piece in PIECES:
        seconds = timer.seconds[piece]
        print(f"  {piece:<15} {seconds:7.2f} s  {seconds / epochs:6.3f} s/epoch  {100 * seconds / pieces:5.1f} %")
    for name, size in sorted(timer.bytes_written.items()):
        print(f"  written: {name:<8} {size / 1e6:8.1f} MB  ({size / 1e6 / epochs:.1f} MB/epoch)")


def timed_process(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def job_commands(params: dict, data: Path, run_dir: Path, out: Path, **override: Any) -> list[list[str]]:
    """The plan's predict_evaluate job on the test split: its two commands (``override``: values such as
    ``workers``), each run as its own process."""
    from aclnet_kd.workflow import plan

    stage = plan.STAGES["predict_evaluate"]
    values = {name: plan.get_key(params, key) for name, key in stage.values.items()} | override
    commands = plan.command(stage, **values, track="rail", run="student", seed=0, out=str(out / "eval"),
                            checkpoint=str(run_dir / "best.pt"),
                            data=str(data), split="test", pred=str(out / "maps"), record=str(run_dir / "run.json"))
    return [[sys.executable, "-m", "aclnet_kd.cli", *shlex.split(cmd)[1:]] for cmd in commands]


def time_predict_evaluate(params: dict, data: Path, run_dir: Path, out: Path) -> dict[str, float]:
    """One predict_evaluate job, command by command, and each command's start-up."""
    seconds = {}
    for argv in job_commands(params, data, run_dir, out):
        seconds[argv[3]] = timed_process(argv, REPO)
    # each process's start-up: python and the modules its command imports before it reads a file
    for name, imports in STARTUP_IMPORTS.items():
        seconds[f"{name} start-up"] = timed_process([sys.executable, "-c", f"import {imports}"], REPO)
    return seconds


def time_job_packing(params: dict, data: Path, run_dir: Path, out: Path, jobs: int = 4) -> tuple[float, float]:
    """``jobs`` predict_evaluate jobs on 2 cores: one after another at ``evaluate.workers: 2`` (each job then
    reserves both cores), and two side by side at ``workers: 1`` -> (seconds, seconds)."""
    def run_jobs(workers: int, index: int) -> None:
        for argv in job_commands(params, data, run_dir, out / f"w{workers}_{index}", workers=workers):
            timed_process(argv, REPO)

    started = time.perf_counter()
    for index in range(jobs):
        run_jobs(2, index)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda index: run_jobs(1, index), range(jobs)))
    return serial, time.perf_counter() - started


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.exists() else 0


def report_run_dir(run_dir: Path, report_out: Path) -> None:
    """Job seconds per kind (Snakemake benchmark files), the report's time and the disk of a finished run."""
    jobs: dict[str, list[float]] = defaultdict(list)
    for tsv in sorted((run_dir / "results" / "benchmarks").rglob("*.tsv")):
        lines = tsv.read_text().splitlines()
        kind = tsv.relative_to(run_dir / "results" / "benchmarks").parts[0].removesuffix(".tsv")
        jobs[kind].append(float(lines[1].split("\t")[0]))
    total = sum(sum(v) for v in jobs.values())
    print(f"\njob seconds in {run_dir} (Snakemake benchmark files; {total:.0f} s in all):")
    for kind, seconds in sorted(jobs.items(), key=lambda item: -sum(item[1])):
        print(f"  {kind:<18} {sum(seconds):8.1f} s  {len(seconds):3d} jobs  {sum(seconds) / len(seconds):7.1f} s/job  "
              f"{100 * sum(seconds) / max(total, 1e-9):5.1f} %")
    snakemake = Path(sys.executable).with_name("snakemake")
    seconds = timed_process([str(snakemake), "--cores", "1", "--nolock", "--report", str(report_out)], run_dir)
    print(f"  report: `snakemake --report` {seconds:.1f} s")
    sizes = {name: du(run_dir / name) for name in ("results", "data", ".dvc/cache")}
    print("  disk: " + ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in sizes.items())
          + f"; together {sum(sizes.values()) / 1e9:.2f} GB")
    checkpoints = {name: sum(p.stat().st_size for p in (run_dir / "results").rglob(name)) for name in ("best.pt", "last.pt")}
    print("  of results/: " + ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in checkpoints.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each timed training (default 4)")
    parser.add_argument("--run-dir", type=Path, help="a folder after `make run`: its job seconds, report, disk")
    args = parser.parse_args()

    import torch

    from aclnet_kd.config import load_params
    from aclnet_kd.provenance import cpu_model

    torch.set_num_threads(1)  # as each workflow training runs (compute.train_threads)
    params = load_params([REPO / "params.yaml"])
    every_s = params["train"]["checkpoint_every_s"]
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        data = prepare(params, tmp / "prepared")
        print(f"prepare (synthetic-rail): {time.perf_counter() - started:.1f} s")
        runs = {}
        for label, seconds in (("last.pt every epoch (checkpoint_every_s 0)", 0),
                               (f"params.yaml (checkpoint_every_s {every_s})", every_s)):
            runs[label] = time_training(params, data, tmp / f"run{seconds}", args.epochs, seconds)
            report_training(label, *runs[label], args.epochs)
        (old, old_total), (new, new_total) = runs.values()
        old_bytes, new_bytes = sum(old.bytes_written.values()), sum(new.bytes_written.values())
        print(f"\nratios (every epoch / params.yaml): checkpoint seconds "
              f"{old.seconds['checkpoint'] / max(new.seconds['checkpoint'], 1e-9):.1f}x, bytes written "
              f"{old_bytes / max(new_bytes, 1):.1f}x, training seconds {old_total / new_total:.2f}x")
        print(f"  checkpoint share of an epoch: {100 * old.seconds['checkpoint'] / old_total:.1f} % -> "
              f"{100 * new.seconds['checkpoint'] / new_total:.1f} %; validation "
              f"{100 * new.seconds['validate'] / new_total:.1f} %")
        pe = time_predict_evaluate(params, data, tmp / f"run{every_s}", tmp / "pe")
        job = pe["predict"] + pe["evaluate"]
        print(f"\npredict+evaluate job (test split, {len(list((tmp / 'pe' / 'maps').glob('*')))} maps): {job:.1f} s")
        for name, seconds in pe.items():
            print(f"  {name:<18} {seconds:6.1f} s  {100 * seconds / job:5.1f} % of the job")
        startup = pe["predict start-up"] + pe["evaluate start-up"]
        print(f"  start-up of its two processes: {startup:.1f} s, {100 * startup / job:.0f} % of the job")
        serial, side_by_side = time_job_packing(params, data, tmp / f"run{every_s}", tmp / "packing")
        print(f"  4 jobs: one after another at evaluate.workers 2: {serial:.1f} s; two side by side at workers 1: "
              f"{side_by_side:.1f} s; ratio {serial / side_by_side:.2f}x")
        if args.run_dir:
            report_run_dir(args.run_dir.resolve(), tmp / "report.html")
        else:
            print("\nreport and job seconds: skipped (no --run-dir)")


if __name__ == "__main__":
    main()
