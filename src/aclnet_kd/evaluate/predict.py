"""``aclnet predict --checkpoint``: write one 8-bit saliency map per test image from a training checkpoint
(the command's parser is ``deploy/predict_command.py``; ``--binary``: ``deploy/defects.py``).

    aclnet predict --checkpoint best.pt --dataset data/prepared/NAME --split test --out DIR
    aclnet predict --checkpoint best.pt --rgb-dir new_images/ [--depth-dir new_depth/] --out DIR
    aclnet predict --checkpoint released.pth --arch student [--params params.yaml] --dataset ... --out DIR

A training checkpoint names its model and config (``models.load_model_checkpoint``), so there is no
``--model`` flag; it is read with ``weights_only=True`` and a file carrying pickled code is refused before
anything is written. A plain ``torch.save(model.state_dict())`` file (the authors' release) names no model:
``--arch teacher|student`` builds the params' ``models.<arch>`` entry and loads it strictly
(``models.state_dict``: a ``module.`` prefix is stripped, the backbone's unused ``head.*`` dropped, a
mismatch names its likely cause). The teacher (``model.is_rgbd``) gets RGB and depth; the student gets RGB
only.

Protocols (how a logit map becomes a PNG):

* ``sigmoid`` (ours, default): sigmoid of the logits at network size, resized bilinearly to the GT's
  original size (folder mode: the image's own size), stored as round(255 p). No per-image min-max, so a
  map's grey levels mean the same thing in every image. Note that PySODMetrics min-max normalises every
  prediction before scoring it (its default, which ``aclnet evaluate`` keeps so numbers match the
  literature), so these maps are also *scored* min-max normalised; the difference from
  ``release_minmax`` is in the saved maps and in the resizing order, not in the per-image stretch.
* ``release_minmax`` (the authors' test script): sigmoid, then per-image min-max at network size, saved
  at network size, which is what ``plt.imsave(..., cmap='gray')`` did. ``aclnet evaluate`` resizes these
  to the GT's size.

The output folder appears only when every map has been written (temp folder, then rename).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.numpy_io import PROTOCOLS, folder_array_batches
from aclnet_kd.io import staged_dir


# ---------------------------------------------------------------------------------------------------
# The work: logits -> uint8 maps
# ---------------------------------------------------------------------------------------------------
def logits_to_maps(logits: torch.Tensor, sizes: list[tuple[int, int]], protocol: str = "sigmoid") -> list[np.ndarray]:
    """``(B,1,S,S)`` logits -> B uint8 HxW maps (``sizes`` = the (H, W) each map is wanted at)."""
    if protocol not in PROTOCOLS:
        raise AclnetError(f"unknown protocol {protocol!r} (expected one of {PROTOCOLS})")
    probs = torch.sigmoid(logits.detach().float().cpu())
    maps = []
    for prob, size in zip(probs, sizes):
        prob = prob[None]  # (1,1,S,S)
        if protocol == "sigmoid":
            if tuple(prob.shape[-2:]) != tuple(size):
                prob = F.interpolate(prob, size=tuple(size), mode="bilinear", align_corners=False)
        else:  # release_minmax: stretch each map to [0, 1] and keep the network size
            low, high = prob.min(), prob.max()
            prob = (prob - low) / (high - low) if high > low else torch.zeros_like(prob)
        maps.append((prob[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    return maps


@torch.inference_mode()
def predict_batches(model: torch.nn.Module, batches: Iterator[dict[str, Any]], protocol: str,
                    device: torch.device) -> Iterator[tuple[str, np.ndarray]]:
    """Run ``model`` over batches ``{stems, sizes, rgb, depth?}``; yield ``(stem, uint8 map)``."""
    model.eval().to(device)
    for batch in batches:
        rgb = batch["rgb"].to(device)
        if model.is_rgbd:
            logits = model(rgb, batch["depth"].to(device))
        else:
            logits = model(rgb)  # the student never sees depth
        yield from zip(batch["stems"], logits_to_maps(logits, batch["sizes"], protocol))


# ---------------------------------------------------------------------------------------------------
# Inputs: a prepared dataset split, or plain folders
# ---------------------------------------------------------------------------------------------------
def prepared_batches(prepared_dir: Path, split: str, image_size: int, batch_size: int,
                     need_depth: bool) -> tuple[int, Iterator[dict[str, Any]]]:
    """Batches from ``SaliencyDataset`` (no augmentation); sizes are the GTs' original sizes."""
    from aclnet_kd.data import SaliencyDataset, open_prepared

    prepared = open_prepared(prepared_dir)
    ids = prepared.ids(split)  # raises an error naming the split if it does not exist
    dataset = SaliencyDataset(prepared_dir, split, image_size, augment=False, seed=0)

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            stems = [ids[int(item["index"])] for item in items]
            batch = {
                "stems": stems,
                "sizes": [tuple(np.asarray(prepared.gt_original(split, s)).shape[:2]) for s in stems],
                "rgb": torch.stack([torch.as_tensor(item["rgb"]) for item in items]),
            }
            if need_depth:
                batch["depth"] = torch.stack([torch.as_tensor(item["depth"]) for item in items])
            yield batch

    return len(dataset), batches()


def folder_batches(rgb_dir: Path, depth_dir: Path | None, image_size: int, batch_size: int,
                   need_depth: bool, depth_polarity: str = "near_bright") -> tuple[int, Iterator[dict[str, Any]]]:
    """Batches from plain folders, paired by file stem; each map keeps its own image's size
    (``numpy_io.folder_array_batches``, the ONNX path's, with tensors)."""
    count, arrays = folder_array_batches(rgb_dir, depth_dir, image_size, batch_size, need_depth, depth_polarity)

    def batches() -> Iterator[dict[str, Any]]:
        for batch in arrays:
            yield {**batch, **{key: torch.from_numpy(batch[key]) for key in ("rgb", "depth") if key in batch}}

    return count, batches()


def training_image_size(meta: dict[str, Any]) -> int | None:
    """The network input side the checkpoint was trained at: its run record's ``image_size`` (RunRecord),
    or None for a checkpoint without one."""
    size = meta.get("image_size")
    return int(size) if isinstance(size, int) else None


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def load_for_predict(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model, meta) from ``--checkpoint``: a training checkpoint, or with ``--arch`` a plain state_dict
    (meta then holds params ``train[.<arch>].image_size``, the network size that role is trained at)."""
    from aclnet_kd.models import load_model_checkpoint

    if args.arch is None:
        return load_model_checkpoint(args.checkpoint)
    from aclnet_kd.config import load_params
    from aclnet_kd.models.state_dict import build_from_params, load_state_dict_file

    params = load_params(args.params or [Path("params.yaml")])
    model = build_from_params(params, args.arch)
    for step in load_state_dict_file(args.checkpoint, model, args.arch):
        print(f"{args.checkpoint}: {step}")
    train = params["train"]  # the role's training size (a track's override: pass --image-size)
    return model, {"image_size": (train.get(args.arch) or {}).get("image_size", train["image_size"])}


def run(args: argparse.Namespace) -> int:
    """``aclnet predict --checkpoint`` (arguments parsed and checked by ``deploy.predict_command``)."""
    from aclnet_kd.deploy.defects import binary_settings, describe_binary, write_outputs

    if (args.dataset is None) == (args.rgb_dir is None):
        raise AclnetError("give either --dataset PREPARED_DIR --split SPLIT or --rgb-dir DIR")
    if args.dataset is not None and not args.split:
        raise AclnetError("--split is required with --dataset (e.g. --split test)")
    model, meta = load_for_predict(args)  # refuses unsafe or mismatched files before any output exists
    image_size = args.image_size or training_image_size(meta)
    if not image_size or image_size < 32 or image_size % 32:
        raise AclnetError(
            f"{args.checkpoint}: network input size {image_size!r} unusable: pass --image-size N "
            f"(a multiple of 32), or use a checkpoint whose meta records image_size"
        )
    binary = None
    if args.binary:
        binary = binary_settings(meta.get("operating_point"), args.threshold, args.min_area, str(args.checkpoint))
    need_depth = bool(getattr(model, "is_rgbd", False))
    if args.dataset is not None:
        count, batches = prepared_batches(args.dataset, args.split, image_size, args.batch_size, need_depth)
    else:
        if args.depth_dir is not None and not need_depth:
            print("note: the student is RGB-only; --depth-dir is ignored")
        count, batches = folder_batches(args.rgb_dir, args.depth_dir, image_size, args.batch_size, need_depth,
                                        args.depth_polarity)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    with staged_dir(args.out) as tmp:
        written, found = write_outputs(tmp, predict_batches(model, batches, args.protocol, device), binary)
    print(f"wrote {written}/{count} {'masks' if binary else 'maps'} ({args.protocol}, network input {image_size}) "
          f"to {args.out}" + (describe_binary(binary, found) if binary else ""))
    return 0
