"""``aclnet export``: a training checkpoint -> an ONNX model with the sigmoid inside, plus a JSON sidecar.

    aclnet export --checkpoint best.pt --out student.onnx [--verify-dataset data/prepared/NAME]

* torch's ONNX exporter (``dynamo=True``: torch.export, then onnxscript; it runs offline) with a dynamic
  batch, height and width; then ``onnx.checker``. The exporter's own graph optimiser is off
  (``optimize=False``): with torch 2.14 / onnxscript 0.7 its rewrite made onnxruntime return NaN maps at
  some input sizes; onnxruntime's graph optimisations at load time do that work instead.
  (The legacy TorchScript exporter, ``dynamo=False``, cannot export ``Tensor.mT``.)
* The model is verified before it is kept: onnxruntime's maps must equal PyTorch's within 1e-4 (max abs)
  at the training size and at one other size (+64), on a prepared split's images when
  ``--verify-dataset`` is given, else on random inputs.
* The model is written to a temp file and renamed into place only when export, check and verification all
  passed, so a failure leaves no ``.onnx``. The sidecar (``sidecar.py``) is written after it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aclnet_kd import provenance
from aclnet_kd.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_LAYOUT
from aclnet_kd.deploy.sidecar import FORMAT, OUTPUT_NAME, SIZE_MULTIPLE, sidecar_path
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import staged_file

TOLERANCE = 1e-4  # max abs difference of the [0, 1] maps, onnxruntime against PyTorch
OPSET = 18


class SaliencyGraph(nn.Module):
    """What is exported: the model in eval mode with the sigmoid, so the output is the map in [0, 1]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.is_rgbd = bool(getattr(model, "is_rgbd", False))
        self.eval()  # eval mode: the model returns the main map only, and dropout/BN are frozen

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(*inputs))


def input_names(is_rgbd: bool) -> list[str]:
    return ["rgb", "depth"] if is_rgbd else ["rgb"]


def example_inputs(is_rgbd: bool, size: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Normalised-looking random inputs. Batch 2 on purpose: torch.export specialises a traced size of 1."""
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch, 3, size, size, generator=gen)
    if not is_rgbd:
        return (rgb,)
    return rgb, torch.rand(batch, 1, size, size, generator=gen)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(graph: SaliencyGraph, path: Path, size: int, opset: int = OPSET) -> None:
    """Export ``graph`` to ``path`` (dynamic batch, height, width) and run onnx's checker on the file."""
    import onnx

    names = input_names(graph.is_rgbd)
    dims = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    log = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(log):  # the exporter narrates each step
            program = torch.onnx.export(graph, example_inputs(graph.is_rgbd, size), input_names=names,
                                        output_names=[OUTPUT_NAME], dynamic_shapes={"inputs": tuple([dims] * len(names))},
                                        opset_version=opset, dynamo=True, optimize=False)
            program.save(str(path))
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:  # the exporter raises many types; the user needs the first line and the log
        lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        # torch.onnx puts the cause after an "Exception summary" heading; else its first line is it
        heads = [i for i, line in enumerate(lines) if "Exception summary" in line]
        first = lines[heads[0] + 1] if heads and heads[0] + 1 < len(lines) else lines[0]
        raise AclnetError(f"the model does not export to ONNX ({type(err).__name__}: {first})\n"
                          f"{log.getvalue()[-2000:]}") from None


def verify_onnx(graph: SaliencyGraph, path: Path, batches: dict[int, list[tuple[np.ndarray, ...]]],
                tolerance: float = TOLERANCE) -> dict[str, float]:
    """Max abs difference of onnxruntime's maps against PyTorch's, per input size; raises past ``tolerance``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = input_names(graph.is_rgbd)
    worst: dict[str, float] = {}
    for size, inputs in batches.items():
        gaps = []
        for arrays in inputs:
            with torch.no_grad():
                expected = graph(*(torch.from_numpy(a) for a in arrays)).numpy()
            got = session.run([OUTPUT_NAME], dict(zip(names, arrays)))[0]
            if got.shape != expected.shape:
                raise AclnetError(f"{path}: onnxruntime output {got.shape} != PyTorch's {expected.shape} at {size}")
            gaps.append(float(np.abs(got - expected).max()))
        diff = float(np.max(gaps))  # np.max keeps a NaN (Python's max() could drop it): a NaN map fails
        worst[str(size)] = diff
        if not diff <= tolerance:
            raise AclnetError(f"{path}: onnxruntime's maps differ from PyTorch's by {diff:.2e} (max abs) at "
                              f"{size}x{size}, over the {tolerance:.0e} tolerance")
    return worst


def random_batches(is_rgbd: bool, sizes: list[int]) -> dict[int, list[tuple[np.ndarray, ...]]]:
    return {size: [tuple(t.numpy() for t in example_inputs(is_rgbd, size, seed=size))] for size in sizes}


def dataset_batches(prepared: Path, split: str, is_rgbd: bool, sizes: list[int], limit: int
                    ) -> dict[int, list[tuple[np.ndarray, ...]]]:
    """Up to ``limit`` images of a prepared split at each size, in batches of 4, as the loaders feed them."""
    from aclnet_kd.evaluate.predict import prepared_batches

    out: dict[int, list[tuple[np.ndarray, ...]]] = {}
    for size in sizes:
        _, batches = prepared_batches(prepared, split, size, 4, need_depth=is_rgbd)
        out[size], seen = [], 0
        for batch in batches:
            take = min(limit - seen, len(batch["stems"]))
            keys = ("rgb", "depth") if is_rgbd else ("rgb",)
            out[size].append(tuple(batch[key][:take].numpy() for key in keys))
            seen += take
            if seen >= limit:
                break
    return out


def sidecar(graph: SaliencyGraph, name: str, cfg: dict[str, Any], meta: dict[str, Any], size: int,
            checkpoint: Path, verification: dict[str, Any], opset: int) -> dict[str, Any]:
    """The sidecar's content (see ``sidecar.py``)."""
    import onnx

    shape = ["batch", 3, "height", "width"]
    inputs = [{"name": "rgb", "shape": shape}]
    if graph.is_rgbd:
        inputs.append({"name": "depth", "shape": ["batch", 1, "height", "width"]})
    return {
        "format": FORMAT, "model_name": name, "model_cfg": cfg, "is_rgbd": graph.is_rgbd,
        "inputs": inputs, "output": {"name": OUTPUT_NAME, "shape": ["batch", 1, "height", "width"],
                                     "meaning": "saliency probability in [0, 1] (sigmoid inside the graph)"},
        "input_size": size, "size_multiple": SIZE_MULTIPLE,
        "mean": [round(float(v), 6) for v in IMAGENET_MEAN], "std": [round(float(v), 6) for v in IMAGENET_STD],
        "layout": INPUT_LAYOUT,
        "checkpoint": {"file": checkpoint.name, "sha256": sha256_file(checkpoint)},
        # the threshold `aclnet predict --onnx --binary` applies (None: the checkpoint records none)
        "operating_point": meta.get("operating_point"),
        "record": meta, "verification": verification,
        "exporter": {"torch": torch.__version__, "onnx": onnx.__version__, "opset": opset, "dynamo": True,
                     "optimize": False},
        "provenance": provenance.collect(),  # the export's own: code, packages, machine
    }


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (best.pt)")
    parser.add_argument("--out", required=True, type=Path, help="the .onnx file; its .json sidecar goes beside it")
    parser.add_argument("--image-size", type=int, help="input side recorded as the default (default: training size)")
    parser.add_argument("--verify-dataset", type=Path, help="prepared dataset whose images verify the export "
                        "(default: random inputs)")
    parser.add_argument("--verify-split", default="test", help="split of --verify-dataset (default test)")
    parser.add_argument("--verify-images", type=int, default=8, help="images per size to verify on (default 8)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")


def main(args: argparse.Namespace) -> int:
    from aclnet_kd.checkpoint import safe_load
    from aclnet_kd.models import load_model_checkpoint
    from aclnet_kd.evaluate.predict import training_image_size

    if args.out.suffix != ".onnx":
        raise AclnetError(f"--out {args.out}: give a path ending in .onnx")
    model, meta = load_model_checkpoint(args.checkpoint)  # clear error if it does not load
    ckpt = safe_load(args.checkpoint)  # again, for the model name and config the sidecar records
    size = args.image_size or training_image_size(meta)
    if not size or size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        raise AclnetError(f"{args.checkpoint}: input size {size!r} unusable: pass --image-size N "
                          f"(a multiple of {SIZE_MULTIPLE})")
    graph = SaliencyGraph(model)
    sizes = [size, size + 64]
    if args.verify_dataset is not None:
        batches = dataset_batches(args.verify_dataset, args.verify_split, graph.is_rgbd, sizes, args.verify_images)
        source = f"{args.verify_split} split of {args.verify_dataset} ({args.verify_images} images max)"
    else:
        batches, source = random_batches(graph.is_rgbd, sizes), "random normalised inputs"
    side = sidecar_path(args.out)
    with staged_file(args.out) as tmp:  # renamed into place last: no .onnx unless all of this passed
        export_onnx(graph, tmp, size, args.opset)
        worst = verify_onnx(graph, tmp, batches)
        verification = {"inputs": source, "max_abs_by_size": worst, "tolerance": TOLERANCE}
        info = sidecar(graph, ckpt["model_name"], dict(ckpt.get("model_cfg") or {}), meta, size,
                       args.checkpoint, verification, args.opset)
        with staged_file(side) as tmp_side:
            tmp_side.write_text(json.dumps(info, indent=2, default=str) + "\n")
    print(f"wrote {args.out} and {side.name} ({'teacher, rgb + depth' if graph.is_rgbd else 'student, rgb'}; "
          f"verified against PyTorch: max abs {max(worst.values()):.1e} at sizes {sizes})")
    return 0
