"""``aclnet train``: train the RGB-D teacher, the plain student, or the distilled student.

    aclnet train --role teacher            --data data/prepared/synthetic-rail --out DIR --params params.yaml
    aclnet train --role student --kd off   --data ... --out DIR --params params.yaml
    aclnet train --role student --kd on --teacher results/train/rail/teacher/seed0/best.pt --data ... --out DIR \\
                 --params params.yaml [--params config/paper.yaml] [--seed 0] [--track rail] \\
                 [--kd-weights cld=1,mgmd=0,atd=0]

Several processes: ``torchrun --nproc_per_node N $(which aclnet) train ...`` (DDP; gloo on CPU, nccl on CUDA).
Starting a killed run again resumes it from ``DIR/last.pt``; starting a finished one does nothing, or, with
``--restart-finished`` (the workflow's trainings, which keep last.pt across a rerun so that a preempted job
resumes), trains it again from scratch: the workflow reruns a finished training only when its inputs changed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aclnet_kd.config import load_params
from aclnet_kd.errors import AclnetError
from aclnet_kd.train.recipe import ROLES, kd_method_weights, parse_kd_weights, resolve_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=ROLES, help="teacher (RGB-D) or student (RGB)")
    parser.add_argument("--kd", choices=("on", "off"), default="off",
                        help="student only: distil from --teacher (CLD, MGMD, ATD); default off")
    parser.add_argument("--teacher", metavar="CKPT", help="the teacher's checkpoint (best.pt), for --kd on")
    parser.add_argument("--data", required=True, metavar="PREPARED_DIR", help="a folder written by aclnet prepare")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (last.pt, best.pt, logs)")
    parser.add_argument("--params", required=True, action="append", metavar="YAML",
                        help="params.yaml, then presets merged over it in order (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed for init, data order, augmentation (default 0)")
    parser.add_argument("--track", help="a key of params `tracks`; merges tracks.<track>.train over `train`")
    parser.add_argument("--kd-weights", metavar="NAME=W,...",
                        help="override kd.weights for ablations, e.g. cld=1,mgmd=0,atd=0")
    parser.add_argument("--kd-method", metavar="RUN",
                        help="train the KD-method run RUN: its weights are params kd_methods.RUN (others 0)")
    parser.add_argument("--restart-finished", action="store_true",
                        help="DIR/last.pt of a finished run is deleted and the run trained again from scratch "
                             "(an unfinished one still resumes)")


def drop_finished_run(out_dir: Path) -> bool:
    """Delete ``out_dir/last.pt`` when it holds a finished run; True when it did. Rank 0 only (torchrun sets
    RANK): the other ranks read last.pt only after the process group has formed, i.e. after this."""
    from aclnet_kd.checkpoint import safe_load

    last = out_dir / "last.pt"
    if os.environ.get("RANK", "0") != "0" or not last.exists():
        return False
    state = safe_load(last)
    if isinstance(state, dict) and state.get("train_state", {}).get("finished"):
        last.unlink()
        print(f"aclnet train: {last} holds a finished run; training again from scratch (--restart-finished)")
        return True
    return False


def main(args: argparse.Namespace) -> int:
    from aclnet_kd.train.loop import train  # imports torch and the models; keep `--help` fast

    params = load_params(args.params)
    if args.kd_method and args.kd_weights:
        raise AclnetError("--kd-method and --kd-weights: give one (a method's weights are params kd_methods)")
    override = parse_kd_weights(args.kd_weights) if args.kd_weights else None
    if args.restart_finished:
        drop_finished_run(Path(args.out))
    recipe = resolve_recipe(
        params,
        role=args.role,
        kd=args.kd == "on",
        seed=args.seed,
        track=args.track,
        kd_weights_override=kd_method_weights(params, args.kd_method) if args.kd_method else override,
    )
    train(recipe, args.data, args.out, teacher_checkpoint=args.teacher, operating_point=params["operating_point"])
    return 0
