"""``aclnet predict --onnx``: maps from an exported model with OpenVINO or onnxruntime, without importing torch.

    aclnet predict --onnx student.onnx --rgb-dir new_images/ --out maps/ [--binary] [--runtime onnxruntime]
    aclnet predict --onnx teacher.onnx --rgb-dir rgb/ --depth-dir depth/ --out maps/

The same folder pairing, preprocessing, map protocols and errors as the checkpoint path
(``aclnet_kd.evaluate.numpy_io``); the input size, normalisation and inputs come from the model's JSON
sidecar. The output folder appears only when every map has been written.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterator

import numpy as np

from aclnet_kd.deploy.defects import binary_settings, describe_binary, write_outputs
from aclnet_kd.deploy.runtimes import open_model
from aclnet_kd.deploy.sidecar import read_sidecar, sidecar_path
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.numpy_io import folder_array_batches, probs_to_maps
from aclnet_kd.io import staged_dir


def predict_onnx(model: Callable[[dict[str, np.ndarray]], np.ndarray], batches: Iterator[dict[str, Any]],
                 need_depth: bool, protocol: str) -> Iterator[tuple[str, np.ndarray]]:
    """Run the model (``runtimes.open_model``) over the batches; yield ``(stem, uint8 map)``."""
    names = ["rgb", "depth"] if need_depth else ["rgb"]
    for batch in batches:
        probs = model({name: batch[name] for name in names})
        yield from zip(batch["stems"], probs_to_maps(probs, batch["sizes"], protocol))


def run(args: argparse.Namespace) -> int:
    """``aclnet predict --onnx`` (arguments parsed and checked by ``predict_command``)."""
    info = read_sidecar(args.onnx)
    image_size = args.image_size or int(info["input_size"])
    multiple = int(info.get("size_multiple", 32))
    if image_size < multiple or image_size % multiple:
        raise AclnetError(f"--image-size {image_size}: must be a multiple of {multiple}")
    binary = None
    if args.binary:
        binary = binary_settings(info.get("operating_point"), args.threshold, args.min_area,
                                 str(sidecar_path(args.onnx)))
    need_depth = len(info["inputs"]) == 2
    if args.depth_dir is not None and not need_depth:
        print("note: the student is RGB-only; --depth-dir is ignored")
    count, batches = folder_array_batches(args.rgb_dir, args.depth_dir, image_size, args.batch_size, need_depth,
                                   args.depth_polarity)
    model = open_model(args.runtime, args.onnx, args.threads)
    with staged_dir(args.out) as tmp:
        written, found = write_outputs(tmp, predict_onnx(model, batches, need_depth, args.protocol), binary)
    print(f"wrote {written}/{count} {'masks' if binary else 'maps'} ({args.protocol}, network input {image_size}, "
          f"{model.name}) to {args.out}" + (describe_binary(binary, found) if binary else ""))
    return 0
