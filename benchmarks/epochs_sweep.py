"""What a shorter demo recipe costs in convergence: one run trained at several recipes, side by side (issue 24).

`make run` is mostly training (docs/training.md "The demo's pieces"), so a faster demo needs fewer image-steps.
This trains one run of the demo, a plain student (default: SOD, seed 0; SOD's students needed the most epochs)
at each recipe given, two at a time on one thread each as the workflow packs its trainings, and prints per
recipe: its seconds, the best validation Sm, the plateau rule's gain over the last quarter of the epochs and
whether the run converged (gain < 0.01), with its cost relative to the first recipe.

A recipe is a YAML mapping merged over params.yaml's `train` (the track's overrides still apply over it):

    python benchmarks/epochs_sweep.py                                   # 32 (params.yaml), 28, 24, 20 epochs
    python benchmarks/epochs_sweep.py --recipe '{}' --recipe '{epochs: 20, lr: 1.5e-3}' \
        --recipe '{epochs: 20, batch_size: 16, lr: 2.0e-3}' --track rail --seed 1

Synthetic data, one seed: the rule's gain is noisy near 0.01 (one run can pass at 24 epochs and fail at 28),
so a recipe that passes here still needs the 3-seed `make run` to show that all 14 runs converge.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from aclnet_kd.provenance import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPES = ("{}", "{epochs: 28}", "{epochs: 24}", "{epochs: 20}")


def aclnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "aclnet_kd.cli", *args]


def train_one(index: int, recipe: dict, args: argparse.Namespace, data: Path, work: Path) -> dict:
    """One `aclnet train` at ``recipe`` (one thread); its seconds and run.json's verdict."""
    preset = work / f"recipe{index}.yaml"
    preset.write_text(yaml.safe_dump({"train": recipe}))
    out = work / f"run{index}"
    cmd = aclnet("train", "--role", "student", "--data", str(data), "--out", str(out), "--params",
                 str(args.params), "--params", str(preset), "--seed", str(args.seed), "--track", args.track)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"recipe {recipe}: aclnet train failed:\n{proc.stderr[-3000:]}")
    record = json.loads((out / "run.json").read_text())
    plateau = record["plateau"]
    return {"recipe": recipe, "seconds": seconds, "epochs": record["epochs"], "best_val_sm": plateau["best_final"],
            "gain": plateau["gain"], "converged": record["converged"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", help="YAML mapping over `train` (repeatable; first = baseline)")
    parser.add_argument("--track", default="sod", choices=("rail", "sod"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--jobs", type=int, default=2, help="trainings side by side (default 2, as make run)")
    args = parser.parse_args()
    recipes = [yaml.safe_load(text) or {} for text in (args.recipe or DEFAULT_RECIPES)]

    params = yaml.safe_load(args.params.read_text())
    dataset = params["tracks"][args.track]["dataset"]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.track} plain student, seed {args.seed}, {args.jobs} trainings side by side, 1 thread each")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(aclnet("prepare", "--params", str(args.params), "--dataset", dataset, "--out",
                              str(work / dataset)), cwd=REPO, check=True, capture_output=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(lambda item: train_one(item[0], item[1], args, work / dataset, work),
                                 enumerate(recipes)))

    base = rows[0]["seconds"]
    print(f"{'recipe (over train)':<44} {'epochs':>6} {'seconds':>8} {'cost':>6} {'best val Sm':>11} "
          f"{'gain':>7}  converged")
    for row in rows:
        gain = "—" if row["gain"] is None else f"{row['gain']:.4f}"  # None: too few epochs for a window
        print(f"{json.dumps(row['recipe']):<44} {row['epochs']:>6} {row['seconds']:>8.1f} {row['seconds'] / base:>6.2f} "
              f"{row['best_val_sm']:>11.3f} {gain:>7}  {'yes' if row['converged'] else 'NO'}")


if __name__ == "__main__":
    main()
