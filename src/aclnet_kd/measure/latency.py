"""``aclnet latency``: milliseconds per image of a model at batch 1 on this machine's CPU, for Table I.

    aclnet latency --model aclnet_s --size 256 [--threads N] --out results/latency/aclnet_s.json
    aclnet latency --params params.yaml --role student --size 256 --out ...   (the model of `models.student`)

PyTorch eager fp32 in inference mode, warm-up calls excluded, median and p90 over the timed calls, with the
thread count and the CPU's name recorded beside them. The weights are random: a dense fp32 forward does the
same work whatever their values, so no trained checkpoint is needed (as for ``aclnet complexity``).
``benchmarks/inference_latency.py`` compares more back ends (bf16, onnxruntime, int8) with these helpers.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import staged_file
from aclnet_kd.measure.configured import add_model_options, model_config
from aclnet_kd.provenance import cpu_model


def time_calls(call: Callable[[], Any], warmup: int, iters: int) -> list[float]:
    """Milliseconds of each of ``iters`` calls of ``call``, after ``warmup`` untimed ones."""
    if warmup < 0 or iters < 1:
        raise AclnetError(f"need warmup >= 0 and iters >= 1 (got {warmup}, {iters})")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summarise(times_ms: list[float], batch: int = 1) -> dict[str, float]:
    """Median and p90 milliseconds per image."""
    per_image = np.asarray(times_ms, dtype=np.float64) / batch
    return {"median_ms": float(np.median(per_image)), "p90_ms": float(np.percentile(per_image, 90)),
            "calls": len(times_ms)}


def eager_latency(model_name: str, size: int, threads: int, warmup: int, iters: int,
                  backbone: str | None = None) -> dict[str, Any]:
    """PyTorch eager fp32 latency of ``model_name`` at batch 1, ``size`` x ``size``."""
    import torch

    from aclnet_kd.models import build_model

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(model_name, **({"backbone": backbone} if backbone else {})).eval()
    inputs = [torch.randn(1, 3, size, size)] + ([torch.rand(1, 1, size, size)] if model.is_rgbd else [])
    with torch.inference_mode():
        times = time_calls(lambda: model(*inputs), warmup, iters)
    return {"model": model_name, **({"backbone": backbone} if backbone else {}), "backend": "pytorch eager fp32",
            "input_size": size, "batch": 1, "threads": torch.get_num_threads(), "cpu": cpu_model(),
            "torch": torch.__version__, "warmup_calls": warmup, **summarise(times)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, "time")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default 0: torch's default, "
                        "one per core)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--iters", type=int, default=20, help="timed calls (default 20)")


def main(args: argparse.Namespace) -> int:
    if args.size < 32 or args.size % 32:
        raise AclnetError(f"--size {args.size}: must be a positive multiple of 32")
    name, cfg = model_config(args)
    result = eager_latency(name, args.size, args.threads, args.warmup, args.iters, cfg.get("backbone"))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        with staged_file(args.out) as tmp:
            tmp.write_text(text + "\n")
    return 0
