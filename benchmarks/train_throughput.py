"""Training throughput of the three trainings at 256x256: release-style fp32 eager vs our default settings.

For each step kind (teacher step, plain student step, distillation step) this prints

* images/s in plain fp32 eager mode with NCHW tensors (the release's way) and with our default settings
  (params.yaml `train`: precision, channels_last, compile), and their ratio;
* the model FLOP/s achieved (FLOPs of one step counted with torch.utils.flop_counter: forward + backward of
  the trained network, plus the teacher's no-grad forward when distilling) as a fraction of the peak GEMM
  FLOP/s that this run measures with a large matmul in the same precision.

Targets (issue 4): ratio >= 1.8 for every step on 2 CPU cores, and >= 50% of the measured peak.
A step is the training loop's own `aclnet_kd.train.training.train_step` on the `Training` built by the
loop's `build_training` from the params (recipe, losses, scaler, clipping, compile); the baseline
mode only swaps in the release's per-parameter Adam.

    python benchmarks/train_throughput.py                      # all three, 256 px, batch 4 (~5-10 min, 2 cores)
    python benchmarks/train_throughput.py --steps 1 --warmup 1 --batch 2 --size 128 --only student   # quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from aclnet_kd.config import deep_merge, load_params
from aclnet_kd.models import build_model
from aclnet_kd.provenance import cpu_model
from aclnet_kd.train.distributed import DistInfo, resolve_device
from aclnet_kd.train.training import build_training, prepare_teacher, train_step
from aclnet_kd.train.precision import check_precision
from aclnet_kd.train.recipe import resolve_recipe

STEP_KINDS = ("teacher", "student", "kd")
REPO = Path(__file__).resolve().parents[1]


def make_step(kind: str, params: dict, size: int, batch: int, device: torch.device, track: str | None = None):
    """A random batch and, per mode, the training loop's own :class:`Training` (``build_training``) for one
    step kind; returns ``run(precision, channels_last, compile, ours)``, which runs ``train_step``. The baseline mode swaps in the release's optimizer (per-parameter Adam)."""
    role, kd = ("teacher" if kind == "teacher" else "student"), kind == "kd"
    info = DistInfo(rank=0, local_rank=0, world_size=1, device=device)
    no_weights = {"models": {r: {"pretrained": None} for r in ("teacher", "student")}}
    params = deep_merge(params, no_weights)  # random weights: the speed does not depend on them
    teacher = None
    if kd:
        spec = params["models"]["teacher"]
        teacher = prepare_teacher(build_model(spec["name"], **{k: v for k, v in spec.items() if k != "name"}),
                                  device, channels_last=False)
    generator = torch.Generator().manual_seed(0)
    data = {"rgb": torch.randn(batch, 3, size, size, generator=generator).to(device),
            "depth": torch.rand(batch, 1, size, size, generator=generator).to(device),
            "gt": (torch.rand(batch, 1, size, size, generator=generator) > 0.8).float().to(device)}
    built: dict = {}

    def training_for(precision: str, channels_last: bool, compile_model: bool, ours: bool):
        key = (precision, channels_last, compile_model, ours)
        if key not in built:
            settings = {"precision": precision, "channels_last": channels_last, "compile": compile_model,
                        "device": device.type, "image_size": size, "batch_size": batch}
            # a track's recipe (e.g. SOD's gradient clamp) merges over `train`: ours go in at the last level
            edit = {"tracks": {track: {"train": settings}}} if track else {"train": settings}
            recipe = resolve_recipe(deep_merge(params, edit), role, kd=kd, track=track)
            training = build_training(recipe, info, teacher=teacher)
            if not ours:  # the release's optimizer: the default per-parameter loop (same update rule)
                training.optimizer = torch.optim.Adam(training.model.parameters(), lr=recipe.lr,
                                                      weight_decay=recipe.weight_decay, foreach=False)
            built[key] = training
        return built[key]

    def run(precision: str, channels_last: bool, compile_model: bool = False, ours: bool = False) -> None:
        if teacher is not None:
            teacher.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        train_step(training_for(precision, channels_last, compile_model, ours), data)

    def count_flops() -> int:
        """Model FLOPs of one step: 3 x the forward of what is trained (forward + backward, the usual
        convention) + 1 x the teacher's no-grad forward. Forwards are counted with FlopCounterMode (conv,
        linear, matmul, attention); its conv-backward formula overcounts grouped (depthwise) convolutions,
        so backward passes are not counted directly."""
        training = training_for("fp32", False, False, False)
        model, rgb, depth = training.model, data["rgb"], data["depth"]
        teacher_out, teacher_flops = None, 0
        with torch.no_grad():
            if teacher is not None:
                teacher.to(memory_format=torch.contiguous_format)
                counter = FlopCounterMode(display=False)
                with counter:
                    teacher_out = teacher(rgb, depth, return_all=True)
                teacher_flops = counter.get_total_flops()
            counter = FlopCounterMode(display=False)
            with counter:
                out = model(rgb, depth) if model.is_rgbd else model(rgb, return_all=True)
                training.label_loss(out.side_logits, data["gt"])
                if training.kd_loss is not None:
                    training.kd_loss(out, teacher_out)
        return 3 * counter.get_total_flops() + teacher_flops

    run.count_flops = count_flops
    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(run, device, precision, channels_last, compile_model, ours, warmup, steps) -> float:
    """Seconds per step (mean over ``steps`` after ``warmup`` untimed steps)."""
    for _ in range(warmup):
        run(precision, channels_last, compile_model, ours)
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        run(precision, channels_last, compile_model, ours)
    sync(device)
    return (time.perf_counter() - started) / steps


def peak_gemm_flops(precision: str, device: torch.device, n: int, repeats: int = 3) -> float:
    """FLOP/s of an n x n x n matmul in ``precision`` (the best of ``repeats``)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", action="append", help="params.yaml [+ presets]; default: the repo's params.yaml")
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--batch", type=int, default=4, help="images per step (default 4)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode (default 2)")
    parser.add_argument("--baseline-steps", type=int, help="timed steps of the fp32 baseline (default: --steps)")
    parser.add_argument("--track", help="a key of params `tracks`: its train recipe merges in (e.g. SOD's clamp)")
    parser.add_argument("--only", default=",".join(STEP_KINDS), help="comma list of teacher,student,kd")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--gemm-size", type=int, default=0, help="matmul side for the peak (default 4096 CPU, 8192 GPU)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    params = load_params(args.params or [REPO / "params.yaml"])
    train = params["train"]
    ours = {"precision": train["precision"], "channels_last": train["channels_last"], "compile": train["compile"]}
    device = resolve_device(args.device)
    check_precision(ours["precision"], device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 for the baseline
    gemm_n = args.gemm_size or (8192 if device.type == "cuda" else 4096)
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"device {device} ({device_name}), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; {args.size}x{args.size}, batch {args.batch}, "
          f"track {args.track or '-'}; {args.warmup} warm-up + {args.steps} timed steps ({args.baseline_steps or args.steps} "
          "for the fp32 baseline)")
    print(f"baseline: fp32 eager NCHW, per-parameter Adam (the release); ours: {ours} (params.yaml train), "
          "fused Adam (the training loop)")
    # On a shared machine the peak is what the matmul gets when it runs alone-ish: measure it before the
    # steps and again after them, keep the better one, and print the fractions at the end.
    precisions = sorted({"fp32", ours["precision"]})
    peaks = {p: peak_gemm_flops(p, device, gemm_n) for p in precisions}

    results = []
    for kind in kinds:
        run = make_step(kind, params, args.size, args.batch, device, args.track)
        flops = run.count_flops()
        base_steps = args.baseline_steps or args.steps
        base_s = time_steps(run, device, "fp32", False, False, False, min(args.warmup, base_steps), base_steps)
        ours_s = time_steps(run, device, ours["precision"], ours["channels_last"], ours["compile"], True,
                            args.warmup, args.steps)
        results.append({"step": kind, "flops_per_step": flops, "base_s": base_s, "ours_s": ours_s})
        print(f"{kind:>8}: fp32 eager {args.batch / base_s:8.2f} img/s | ours {args.batch / ours_s:8.2f} img/s",
              flush=True)
        del run

    for precision in precisions:
        peaks[precision] = max(peaks[precision], peak_gemm_flops(precision, device, gemm_n))
        print(f"peak GEMM {precision} ({gemm_n}^3 matmul): {peaks[precision] / 1e12:.3f} TFLOP/s")
    for row in results:
        kind, flops, base_s, ours_s = row["step"], row["flops_per_step"], row.pop("base_s"), row.pop("ours_s")
        row.update({
            "fp32_images_per_s": args.batch / base_s, "ours_images_per_s": args.batch / ours_s,
            "ratio": base_s / ours_s,
            "fp32_fraction_of_peak": flops / base_s / peaks["fp32"],
            "ours_fraction_of_peak": flops / ours_s / peaks[ours["precision"]],
            "ours_tflops": flops / ours_s / 1e12,
        })
        print(f"{kind:>8}: fp32 eager {row['fp32_images_per_s']:8.2f} img/s | ours {row['ours_images_per_s']:8.2f} "
              f"img/s | ratio {row['ratio']:5.2f} (target 1.8: {'met' if row['ratio'] >= 1.8 else 'NOT met'}) | "
              f"{flops / args.batch / 1e9:7.1f} GFLOP/img | ours {row['ours_tflops']:.3f} TFLOP/s = "
              f"{100 * row['ours_fraction_of_peak']:5.1f}% of {ours['precision']} peak (target 50%: "
              f"{'met' if row['ours_fraction_of_peak'] >= 0.5 else 'NOT met'}); fp32 eager "
              f"{100 * row['fp32_fraction_of_peak']:5.1f}% of fp32 peak", flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": str(device), "device_name": device_name, "torch": torch.__version__, "threads": torch.get_num_threads(), "track": args.track,
            "size": args.size, "batch": args.batch, "steps": args.steps, "baseline_steps": args.baseline_steps or args.steps,
            "warmup": args.warmup, "ours": ours,
            "peak_flops": {p: v for p, v in peaks.items()}, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
