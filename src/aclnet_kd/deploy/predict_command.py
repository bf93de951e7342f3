"""``aclnet predict``: one parser for both inference paths; exactly one of ``--checkpoint`` / ``--onnx``.

    aclnet predict --checkpoint best.pt --dataset data/prepared/NAME --split test --out DIR
    aclnet predict --checkpoint best.pt --rgb-dir new_images/ [--depth-dir new_depth/] --out DIR
    aclnet predict --onnx student.onnx --rgb-dir new_images/ --out DIR [--runtime openvino] [--threads 2]
    aclnet predict ... --binary [--threshold 0.4] [--min-area 16]     # masks + defects.csv (docs/deploy.md)

This module imports no torch: ``--checkpoint`` runs ``aclnet_kd.evaluate.predict`` (PyTorch),
``--onnx`` runs ``aclnet_kd.deploy.onnx_predict`` (onnxruntime or OpenVINO, without torch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aclnet_kd.constants import DEPTH_POLARITIES, ROLES
from aclnet_kd.deploy.runtimes import RUNTIMES, default_runtime
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.numpy_io import PROTOCOLS

ARCHS = ROLES  # --arch: which params models.<arch> entry builds a plain state_dict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=Path, help="training checkpoint (best.pt, or an unfinished run's last.pt), or a plain "
                       "state_dict with --arch, run by PyTorch")
    model.add_argument("--onnx", type=Path, help="model from `aclnet export` (its .json sidecar beside it), run "
                       "without torch by --runtime")
    parser.add_argument("--arch", choices=ARCHS, help="--checkpoint is a plain state_dict (e.g. the authors' "
                        "released .pth): build the params' models.<arch> entry and load it strictly")
    parser.add_argument("--params", action="append", type=Path,
                        help="with --arch: params.yaml, then presets merged over it (default: params.yaml)")
    parser.add_argument("--dataset", type=Path, help="prepared dataset folder (data/prepared/NAME; --checkpoint only)")
    parser.add_argument("--split", help="split to predict (with --dataset), e.g. test or NJU2K")
    parser.add_argument("--rgb-dir", type=Path, help="plain folder of RGB images (instead of --dataset)")
    parser.add_argument("--depth-dir", type=Path, help="plain folder of depth images, same stems (teacher only)")
    parser.add_argument("--depth-polarity", choices=DEPTH_POLARITIES, default="near_bright",
                        help="how the --depth-dir files encode near surfaces (default near_bright)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for <stem>.png (and defects.csv)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="sigmoid",
                        help="sigmoid (default): no per-image min-max, original size; release_minmax: as released")
    parser.add_argument("--binary", action="store_true", help="write 0/255 defect masks at the original size "
                        "and defects.csv (one row per defect) instead of grey maps")
    parser.add_argument("--threshold", type=float, help="with --binary: cut on the sigmoid scale, 0-1 (default: "
                        "the operating point recorded in the checkpoint / sidecar)")
    parser.add_argument("--min-area", type=int, help="with --binary: smallest defect in pixels of the original "
                        "image (default: the recorded operating point's, params operating_point.min_area)")
    parser.add_argument("--image-size", type=int, help="network input side (default: the training size)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--threads", type=int, help="intra-op CPU threads (default: the runtime's own choice)")
    parser.add_argument("--device", default="auto", help="--checkpoint only: auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--runtime", choices=RUNTIMES, help=f"--onnx only: {' | '.join(RUNTIMES)} (default: "
                        f"{default_runtime()}, the fastest accurate one installed)")


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot check; raises before anything is loaded or written."""
    if args.batch_size < 1:
        raise AclnetError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise AclnetError(f"--threads must be >= 1, got {args.threads}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise AclnetError(f"--threshold {args.threshold}: must be in [0, 1] (the sigmoid scale)")
    if (args.threshold is not None or args.min_area is not None) and not args.binary:
        raise AclnetError("--threshold and --min-area apply to --binary output: add --binary")
    if args.min_area is not None and args.min_area < 0:
        raise AclnetError(f"--min-area {args.min_area}: must be >= 0")
    if args.binary and args.protocol != "sigmoid":
        raise AclnetError("--binary cuts the sigmoid maps: --protocol release_minmax stretches each map "
                          "and has no fixed threshold")
    if args.onnx is not None and (args.dataset is not None or args.rgb_dir is None):
        raise AclnetError("--onnx predicts plain folders: give --rgb-dir DIR (for a prepared split, use "
                          "--checkpoint with --dataset/--split)")
    if args.onnx is not None and (args.arch is not None or args.params):
        raise AclnetError("--arch and --params build a model for a plain state_dict: use them with --checkpoint")
    if args.checkpoint is not None and args.runtime is not None:
        raise AclnetError("--runtime chooses the ONNX runtime: use it with --onnx (--checkpoint runs PyTorch)")


def main(args: argparse.Namespace) -> int:
    check_arguments(args)
    if args.onnx is not None:
        from aclnet_kd.deploy.onnx_predict import run
    else:
        from aclnet_kd.evaluate.predict import run
    return run(args)
