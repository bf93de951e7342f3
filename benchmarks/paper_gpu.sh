#!/usr/bin/env bash
# The paper preset on one GPU (issue 24): run it where a CUDA GPU is, from the repository root.
#   1. The three trainings (teacher: two Shunted-B streams, RGB-D; plain student: Shunted-T; distillation:
#      the student with the teacher's no-grad forward and CLD+MGMD+ATD) at the paper's sizes, rail 256 px
#      batch 6 and SOD 320 px batch 4 (config/paper.yaml; one GPU, no DDP): images/s and the fraction of the
#      same run's bf16 GEMM peak (benchmarks/train_throughput.py).
#   2. A CUDA checkpoint loads on the CPU: `aclnet train` a teacher and a distilled student on the GPU (smoke
#      sizes), then `aclnet predict` both best.pt files in a process that sees no GPU, and compare the maps with
#      the GPU's.
#   OUT=folder benchmarks/paper_gpu.sh [STEPS] [PARTS]
#   STEPS: timed steps per training kind (default 200); PARTS: "throughput checkpoint" (default both)
set -euo pipefail
OUT=${OUT:-benchmarks/out/paper_gpu}
STEPS=${1:-200}
PARTS=${2:-throughput checkpoint}
mkdir -p "$OUT"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
aclnet() { python3 -m aclnet_kd.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__)'

for spec in "rail 256 6" "sod 320 4"; do
  [[ " $PARTS " == *" throughput "* ]] || break
  read -r track size batch <<<"$spec"
  python3 benchmarks/train_throughput.py --params params.yaml --params config/paper.yaml --device cuda \
    --track "$track" --size "$size" --batch "$batch" --steps "$STEPS" --warmup 20 --baseline-steps 20 \
    --json "$OUT/throughput_$track.json"
done

[[ " $PARTS " == *" checkpoint "* ]] || exit 0
work=$(mktemp -d)
printf 'train: {device: cuda}\n' >"$work/cuda.yaml"
presets=(--params params.yaml --params config/smoke.yaml --params "$work/cuda.yaml")
aclnet prepare "${presets[@]}" --dataset synthetic-rail --out "$work/rail"
aclnet train --role teacher --data "$work/rail" --out "$work/teacher" "${presets[@]}" --track rail
aclnet train --role student --kd on --teacher "$work/teacher/best.pt" --data "$work/rail" --out "$work/kd" \
  "${presets[@]}" --track rail
for run in teacher kd; do
  aclnet predict --checkpoint "$work/$run/best.pt" --dataset "$work/rail" --split test --device cuda --out "$work/$run-gpu"
  CUDA_VISIBLE_DEVICES= aclnet predict --checkpoint "$work/$run/best.pt" --dataset "$work/rail" --split test \
    --device cpu --out "$work/$run-cpu"
done
python3 - "$work" "$OUT/checkpoint_cpu.json" <<'PY'
import json, sys
from pathlib import Path
import cv2, numpy as np, torch
work, out = Path(sys.argv[1]), Path(sys.argv[2])
result = {}
for run in ("teacher", "kd"):
    saved = torch.load(work / run / "best.pt", weights_only=True)  # as written: where its tensors lived
    devices = sorted({str(t.device) for t in saved["state_dict"].values()})
    gpu, cpu = (sorted((work / f"{run}-{d}").glob("*.png")) for d in ("gpu", "cpu"))
    assert gpu and [p.name for p in gpu] == [p.name for p in cpu], (gpu, cpu)
    diff = max(int(np.abs(cv2.imread(str(a), 0).astype(int) - cv2.imread(str(b), 0).astype(int)).max())
               for a, b in zip(gpu, cpu))
    result[run] = {"saved_on": devices, "maps": len(gpu), "max_abs_diff_8bit": diff}
print(json.dumps(result, indent=1))
out.write_text(json.dumps(result, indent=1) + "\n")
PY
