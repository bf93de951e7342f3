"""``aclnet predict --onnx``: maps from an exported model with onnxruntime, without importing torch.

    aclnet predict --onnx student.onnx --rgb-dir new_images/ --out maps/
    aclnet predict --onnx teacher.onnx --rgb-dir rgb/ --depth-dir depth/ --out maps/

The same folder pairing, preprocessing, map protocols and errors as the checkpoint path
(``aclnet_kd.evaluate.numpy_io``); the input size, normalisation and inputs come from the model's JSON
sidecar. The output folder appears only when every map has been written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from aclnet_kd.constants import DEPTH_POLARITIES
from aclnet_kd.deploy.sidecar import OUTPUT_NAME, read_sidecar
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.numpy_io import PROTOCOLS, load_folder_arrays, pair_folders, probs_to_maps
from aclnet_kd.io import staged_dir


def open_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session with all graph optimisations; a file that is no model is a clear error."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        raise AclnetError(f"{path}: onnxruntime cannot load it ({str(err).strip().splitlines()[0]})") from None


def folder_inputs(rgb_dir: Path, depth_dir: Path | None, image_size: int, batch_size: int, need_depth: bool,
                  depth_polarity: str) -> tuple[int, Iterator[dict[str, Any]]]:
    """Like ``predict.folder_batches``, with numpy arrays: ``{stems, sizes, rgb, depth?}``."""
    stems, rgb_files, depth_files = pair_folders(rgb_dir, depth_dir, need_depth)

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, len(stems), batch_size):
            chunk = stems[start:start + batch_size]
            loaded = [load_folder_arrays(rgb_files[s], depth_files.get(s), image_size, depth_polarity)
                      for s in chunk]
            batch = {"stems": chunk, "sizes": [size for _, _, size in loaded],
                     "rgb": np.stack([rgb for rgb, _, _ in loaded])}
            if need_depth:
                batch["depth"] = np.stack([depth for _, depth, _ in loaded])
            yield batch

    return len(stems), batches()


def predict_onnx(session: Any, batches: Iterator[dict[str, Any]], need_depth: bool, protocol: str
                 ) -> Iterator[tuple[str, np.ndarray]]:
    """Run the session over the batches; yield ``(stem, uint8 map)``."""
    names = ["rgb", "depth"] if need_depth else ["rgb"]
    for batch in batches:
        probs = session.run([OUTPUT_NAME], {name: batch[name] for name in names})[0]
        yield from zip(batch["stems"], probs_to_maps(probs, batch["sizes"], protocol))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, type=Path, help="model from `aclnet export` (sidecar beside it)")
    parser.add_argument("--rgb-dir", type=Path, help="plain folder of RGB images")
    parser.add_argument("--depth-dir", type=Path, help="plain folder of depth images, same stems (teacher only)")
    parser.add_argument("--depth-polarity", choices=DEPTH_POLARITIES, default="near_bright",
                        help="how the --depth-dir files encode near surfaces (default near_bright)")
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)  # refused with a pointer, below
    parser.add_argument("--out", required=True, type=Path, help="output folder for <stem>.png maps")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="sigmoid",
                        help="sigmoid (default): no per-image min-max, image size; release_minmax: as released")
    parser.add_argument("--image-size", type=int, help="network input side (default: the sidecar's input_size)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: its own choice)")


def main(args: argparse.Namespace) -> int:
    if args.dataset is not None or args.rgb_dir is None:
        raise AclnetError("--onnx predicts plain folders: give --rgb-dir DIR (for a prepared split, use "
                          "--checkpoint with --dataset/--split)")
    if args.batch_size < 1:
        raise AclnetError(f"--batch-size must be >= 1, got {args.batch_size}")
    info = read_sidecar(args.onnx)
    image_size = args.image_size or int(info["input_size"])
    multiple = int(info.get("size_multiple", 32))
    if image_size < multiple or image_size % multiple:
        raise AclnetError(f"--image-size {image_size}: must be a multiple of {multiple}")
    need_depth = len(info["inputs"]) == 2
    if args.depth_dir is not None and not need_depth:
        print("note: the student is RGB-only; --depth-dir is ignored")
    count, batches = folder_inputs(args.rgb_dir, args.depth_dir, image_size, args.batch_size, need_depth,
                                   args.depth_polarity)
    session = open_session(args.onnx, args.threads)
    written = 0
    with staged_dir(args.out) as tmp:
        for stem, saliency in predict_onnx(session, batches, need_depth, args.protocol):
            if not cv2.imwrite(str(tmp / f"{stem}.png"), saliency):
                raise AclnetError(f"{tmp / (stem + '.png')}: could not write the map")
            written += 1
    print(f"wrote {written}/{count} maps ({args.protocol}, network input {image_size}, onnxruntime) to {args.out}")
    return 0
