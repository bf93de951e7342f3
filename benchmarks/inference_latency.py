"""Inference latency of ACLNet-T (RGB-D) and ACLNet-S at 256 x 256, batch 1, on this CPU, per back end:

* PyTorch eager fp32 (inference mode): the baseline of every ratio;
* PyTorch eager fp32 with channels_last weights and inputs;
* PyTorch ``torch.compile`` (inductor, ``freezing=True``) on the channels_last model, unless --no-compile;
* PyTorch bf16 (CPU autocast), only where the CPU has native bf16 (AVX512-BF16 or AMX), else skipped;
* onnxruntime fp32 with all graph optimisations (the model ``aclnet export`` writes);
* OpenVINO reading the same .onnx, reshaped to the static 1x3x256x256 and compiled with
  ``INFERENCE_PRECISION_HINT: f32`` (``aclnet_kd.deploy.runtimes``, the default of ``predict --onnx``);
* onnxruntime int8 dynamic quantisation (weights int8), kept only if its maps stay within 0.01 MAE of the
  fp32 maps on the timing inputs; otherwise reported as rejected.

Every fp32 back end prints its max abs difference from eager fp32's maps (the export's tolerance: 1e-4).
The fp32 back ends are timed interleaved, one call of each in turn, so that load from other processes on a
shared machine hits them alike (it still slows PyTorch's thread pool more than the others'). Warm-up calls
are excluded; ms/image is the median and p90 over the timed calls; the thread count and the
CPU are printed. It ends with the ratios S against T (per back end) and every back end against eager fp32
(per model), and checks the targets: the deploy runtime (OpenVINO f32) >= 2x eager fp32 for ACLNet-S within
1e-4; S >= 5x faster than T. --profile adds the top operators of PyTorch eager and of onnxruntime for
ACLNet-S, which say where the time goes.

    python benchmarks/inference_latency.py [--threads N] [--iters 30] [--warmup 5] [--profile]
        [--models aclnet_s] [--no-compile] [--teacher T.pt --student S.pt]   # default: random weights
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from aclnet_kd.models import load_model_checkpoint
from aclnet_kd.deploy.export import SaliencyGraph, export_onnx, input_names
from aclnet_kd.measure.latency import summarise, time_calls
from aclnet_kd.provenance import cpu_model
from aclnet_kd.deploy.runtimes import OpenVinoModel, installed
from aclnet_kd.models import build_model

SIZE = 256
MAE_LIMIT = 0.01  # int8 is kept only if its maps stay this close to fp32's (mean abs, maps in [0, 1])
TARGET_DEPLOY = 2.0  # the deploy runtime (OpenVINO f32) >= 2x eager fp32 for ACLNet-S ...
DEPLOY = "openvino f32"
TOLERANCE = 1e-4  # ... with its maps within the export's tolerance of eager fp32's
TARGET_S_VS_T = 5.0  # ACLNet-S >= 5x faster than ACLNet-T


def bf16_supported() -> bool:
    """Native bf16 matmul on this CPU (oneDNN's check: AVX512-BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def session(path: Path, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_model(name: str, graph: SaliencyGraph, workdir: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Every back end for one model: {backend: summary}. The fp32 back ends are timed interleaved (one call
    of each in turn, ``round_robin``), so load from other processes hits them alike."""
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, SIZE, SIZE, generator=gen)]
    if graph.is_rgbd:
        inputs.append(torch.rand(1, 1, SIZE, SIZE, generator=gen))
    feeds = dict(zip(input_names(graph.is_rgbd), (t.numpy() for t in inputs)))
    with torch.inference_mode():
        reference = graph(*inputs).numpy()
    calls = {"eager fp32": inference(lambda: graph(*inputs))}
    skipped = torch_variants(graph, inputs, calls, args)
    fp32_path = workdir / f"{name}.onnx"
    export_onnx(graph, fp32_path, SIZE)
    fp32 = session(fp32_path, args.threads)
    calls["onnxruntime fp32"] = lambda: fp32.run(None, feeds)[0]
    if installed("openvino"):
        openvino = OpenVinoModel(fp32_path, args.threads)
        calls[DEPLOY] = lambda: openvino(feeds)
    else:
        skipped[DEPLOY] = {"skipped": "the openvino package is not installed"}
    out = round_robin(calls, reference, args)
    out.update(skipped)
    out["eager bf16"] = bench_bf16(graph, inputs, reference, args)
    out["onnxruntime int8 dynamic"] = bench_int8(fp32_path, workdir / f"{name}.int8.onnx", feeds, reference, args)
    return out


def inference(call):
    """``call`` under torch.inference_mode, returning numpy maps."""
    def run():
        with torch.inference_mode():
            return call().numpy()
    return run


def round_robin(calls: dict, reference: np.ndarray, args: argparse.Namespace) -> dict[str, dict]:
    """Warm each call up, then time them in turn, ``args.iters`` rounds; each gets its latency summary and
    the max abs difference of its maps from eager fp32's."""
    for call in calls.values():
        for _ in range(args.warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.iters):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    out = {}
    for name, call in calls.items():
        out[name] = summarise(times[name])
        out[name]["max_abs_vs_eager"] = float(np.abs(np.asarray(call(), np.float32) - reference).max())
    return out


def bench_bf16(graph: SaliencyGraph, inputs: list[torch.Tensor], reference: np.ndarray,
               args: argparse.Namespace) -> dict:
    if not bf16_supported():
        return {"skipped": "no native bf16 on this CPU (AVX512-BF16/AMX)"}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        result = summarise(time_calls(lambda: graph(*inputs), args.warmup, args.iters))
        result["mae_vs_fp32"] = float(np.abs(graph(*inputs).float().numpy() - reference).mean())
    return result


def torch_variants(graph: SaliencyGraph, inputs: list[torch.Tensor], calls: dict,
                   args: argparse.Namespace) -> dict[str, dict]:
    """Adds the stronger PyTorch baselines to ``calls``: channels_last, and torch.compile (inductor, frozen
    weights) on it; returns those skipped, with why."""
    model = copy.deepcopy(graph).to(memory_format=torch.channels_last).eval()
    cl_inputs = [t.contiguous(memory_format=torch.channels_last) for t in inputs]
    calls["eager fp32 channels_last"] = inference(lambda: model(*cl_inputs))
    if args.no_compile:
        return {"torch.compile fp32": {"skipped": "--no-compile"}}
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # weights become constants: conv/linear prepacked for oneDNN
    compiled = torch.compile(model)
    try:
        with torch.no_grad():
            start = time.perf_counter()
            compiled(*cl_inputs)  # the compilation
        print(f"  torch.compile: compiled in {time.perf_counter() - start:.0f} s", flush=True)
    except Exception as err:  # a compiler failure is reported, not fatal
        return {"torch.compile fp32": {"skipped": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"}}

    def run():
        with torch.no_grad():
            return compiled(*cl_inputs).numpy()
    calls["torch.compile fp32"] = run
    return {}


def bench_int8(fp32_path: Path, int8_path: Path, feeds: dict, reference: np.ndarray,
               args: argparse.Namespace) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
        int8 = session(int8_path, args.threads)
    except Exception as err:  # quantisation support differs per operator; report, do not crash the run
        return {"skipped": f"quantize_dynamic failed: {type(err).__name__}: {str(err).splitlines()[0]}"}
    mae = float(np.abs(int8.run(None, feeds)[0] - reference).mean())
    if not mae <= MAE_LIMIT:
        return {"rejected": f"maps differ from fp32 by MAE {mae:.4f} > {MAE_LIMIT}", "mae_vs_fp32": mae}
    result = summarise(time_calls(lambda: int8.run(None, feeds), args.warmup, args.iters))
    result["mae_vs_fp32"] = mae
    return result


def openvino_version() -> str:
    if not installed("openvino"):
        return "not installed"
    import openvino

    return openvino.__version__.split("-")[0]


def load_graph(name: str, checkpoint: Path | None) -> SaliencyGraph:
    if checkpoint is not None:
        return SaliencyGraph(load_model_checkpoint(checkpoint)[0])
    torch.manual_seed(0)
    return SaliencyGraph(build_model(name))


def report(results: dict[str, dict[str, dict]], threads: int) -> list[str]:
    """The printed table and ratios; returns the targets missed."""
    print(f"\nCPU: {cpu_model()}; threads: {threads} (torch intra-op = onnxruntime intra-op); "
          f"256x256, batch 1; torch {torch.__version__}, onnxruntime {ort.__version__}, openvino {openvino_version()}")
    print(f"{'model':<10}{'back end':<28}{'median ms/img':>15}{'p90 ms/img':>12}  note")
    for name, rows in results.items():
        for backend, row in rows.items():
            if "median_ms" in row:
                note = ", ".join(f"{k} {v:.2e}" for k, v in row.items() if k.endswith(("_vs_fp32", "_vs_eager")))
                print(f"{name:<10}{backend:<28}{row['median_ms']:>15.1f}{row['p90_ms']:>12.1f}  {note}")
            else:
                print(f"{name:<10}{backend:<28}{'—':>15}{'—':>12}  {next(iter(row.values()))}")
    missed = []
    if "aclnet_t" in results and "aclnet_s" in results:
        t, s = results["aclnet_t"], results["aclnet_s"]
        print("\nS against T (T ms / S ms, median):")
        for backend in s:
            if "median_ms" in s[backend] and "median_ms" in t.get(backend, {}):
                print(f"  {backend:<28}{t[backend]['median_ms'] / s[backend]['median_ms']:6.2f}x")
        s_vs_t = t["eager fp32"]["median_ms"] / s["eager fp32"]["median_ms"]
        missed += check("S vs T, eager fp32", s_vs_t, TARGET_S_VS_T)
    for name, rows in results.items():
        print(f"\n{name}: against eager fp32 (eager ms / back end ms, median):")
        for backend, row in rows.items():
            if "median_ms" in row and backend != "eager fp32":
                print(f"  {backend:<28}{rows['eager fp32']['median_ms'] / row['median_ms']:6.2f}x")
    deploy = results.get("aclnet_s", {}).get(DEPLOY, {})
    if "median_ms" in deploy:
        ratio = results["aclnet_s"]["eager fp32"]["median_ms"] / deploy["median_ms"]
        missed += check(f"{DEPLOY} vs eager fp32, ACLNet-S", ratio, TARGET_DEPLOY)
        if not deploy["max_abs_vs_eager"] <= TOLERANCE:
            print(f"target {DEPLOY} maps within {TOLERANCE:.0e} of eager: MISSED ({deploy['max_abs_vs_eager']:.2e})")
            missed.append(f"{DEPLOY} accuracy")
    return missed


def check(label: str, value: float, target: float) -> list[str]:
    ok = value >= target
    print(f"target {label}: {value:.2f}x (target >= {target}x): {'met' if ok else 'MISSED'}")
    return [] if ok else [label]


def profile_eager(graph: SaliencyGraph, label: str, top: int = 12) -> None:
    """Self CPU time per ATen operator over 5 calls."""
    from torch.profiler import ProfilerActivity, profile

    inputs = [torch.randn(1, 3, SIZE, SIZE)] + ([torch.rand(1, 1, SIZE, SIZE)] if graph.is_rgbd else [])
    with torch.inference_mode():
        graph(*inputs)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                graph(*inputs)
    print(f"\nprofile, PyTorch eager fp32, {label} (self CPU time over 5 calls):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40))


def profile_ort(path: Path, feeds: dict, threads: int, workdir: Path, label: str, top: int = 12) -> None:
    """Time per onnxruntime operator type over 5 calls, from its own profiler."""
    sess = session(path, threads, profile_prefix=str(workdir / "ort_profile"))
    for _ in range(6):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"].get("op_name", "?")] += event["dur"] / 1000.0
    total = sum(by_op.values())
    print(f"\nprofile, onnxruntime fp32, {label} (kernel time by op type over 6 calls, {total:.0f} ms):")
    for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {op:<24}{ms:10.1f} ms  {100 * ms / total:5.1f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads for torch and onnxruntime (default: torch's, one per core)")
    parser.add_argument("--iters", type=int, default=30, help="timed calls per back end (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    parser.add_argument("--teacher", type=Path, help="ACLNet-T checkpoint (default: random weights)")
    parser.add_argument("--student", type=Path, help="ACLNet-S checkpoint (default: random weights)")
    parser.add_argument("--profile", action="store_true", help="print operator profiles (eager T and S, ORT S)")
    parser.add_argument("--models", nargs="+", choices=("aclnet_t", "aclnet_s"), default=["aclnet_t", "aclnet_s"],
                        help="which models to time (default both)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compilation takes minutes)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        checkpoints = {"aclnet_t": args.teacher, "aclnet_s": args.student}
        graphs = {name: load_graph(name, checkpoints[name]) for name in args.models}
        for name, graph in graphs.items():
            print(f"timing {name} ...", flush=True)
            results[name] = bench_model(name, graph, workdir, args)
        missed = report(results, args.threads)
        if args.profile:
            for name, graph in graphs.items():
                profile_eager(graph, name)
            feeds = {"rgb": np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)}
            if "aclnet_s" in graphs:
                profile_ort(workdir / "aclnet_s.onnx", feeds, args.threads, workdir, "aclnet_s")
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "threads": args.threads, "results": results,
                                         "targets_missed": missed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
