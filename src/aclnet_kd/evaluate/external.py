"""``aclnet external``: measure one row that a reader brings (params ``external.<name>``), on every test split
of its track: the maps of a released checkpoint (made here), or a folder of published maps, scored with the
same PySODMetrics code as our own runs.

    aclnet external --params params.yaml [--params PRESET] --name NAME --data-root data/prepared \
        --out results/external/NAME

Writes, all or nothing (a temp folder renamed into place):

* ``<split>/metrics.json``, ``<split>/curves.csv``, ``<split>/per_image.csv``: as ``aclnet evaluate``;
* ``maps/<split>/<stem>.png``: a checkpoint entry's maps (``aclnet predict`` with the entry's protocol);
* ``row.json``: the entry (track, label, paper_row, source, arch, protocol, image size) and, per split, how
  many maps were scored and which were resized to their GT's size (the table's footnote says so).

A maps folder is matched to the GT by stem: every missing or extra map is named, and so is a file that is
not an image or cannot be read. Nothing is written then.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aclnet_kd.config import load_params, section
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.evaluate import PreparedGt, format_outputs, match_files, score_maps
from aclnet_kd.evaluate.io import list_images
from aclnet_kd.external import MAPS_SUBDIR, ROW_FILE, entries, kind, maps_folder, protocol
from aclnet_kd.io import IMAGE_SUFFIXES, atomic_write_texts, staged_dir


def source_text(entry: dict) -> str:
    """What the row was measured from, for the table's Source column."""
    if kind(entry) == "checkpoint":
        return f"{Path(entry['checkpoint']).name} ({entry['arch']}, maps: {protocol(entry)})"
    return f"maps {entry['maps']}"


def check_entry(params: dict, name: str) -> dict:
    """params ``external.<name>``, or an error naming the key."""
    found = entries(params)
    if name not in found:
        raise AclnetError(f"params: external.{name} does not exist (entries: {sorted(found) or 'none'})")
    return found[name]


def check_maps_folder(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of a maps folder; a file there that is not an image (by suffix) is an error naming it
    (hidden files aside): a published folder holds maps only, and a stray file means a wrong folder."""
    files = list_images(folder, what="maps")
    others = sorted(p.name for p in folder.iterdir()
                    if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES))
    if others:
        raise AclnetError(f"{folder}: not image files (a maps folder holds one <stem>.png per GT image): "
                          f"{', '.join(others[:10])}{' ...' if len(others) > 10 else ''}")
    return files


def resized_stems(jobs: list[tuple[str, Path]], gt: PreparedGt) -> list[str]:
    """The stems whose map is not at its GT's size (the evaluation resizes those to the GT's size)."""
    from PIL import Image, UnidentifiedImageError

    resized = []
    for stem, path in jobs:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError) as err:
            raise AclnetError(f"{path}: unreadable image ({err})") from None
        if (height, width) != gt.load(stem).shape[:2]:
            resized.append(stem)
    return resized


def score_folder(folder: Path, gt: PreparedGt, workers: int) -> tuple[dict[str, str], dict[str, Any]]:
    """Texts of metrics.json / curves.csv / per_image.csv for one folder of maps, and its facts."""
    files = check_maps_folder(folder)
    stems = match_files(files, gt.stems(), folder, gt.describe())
    jobs = [(s, files[s]) for s in stems]
    resized = resized_stems(jobs, gt)
    texts = format_outputs(score_maps(jobs, gt, workers=workers), stems)
    return texts, {"maps": str(folder), "n": len(stems), "resized": len(resized), "resized_stems": resized[:20]}


def make_maps(params: dict, entry: dict, prepared: Path, splits: list[str], out: Path) -> dict[str, Any]:
    """Predict a checkpoint entry's maps for every split into ``out/<split>``; returns the facts."""
    import cv2
    import torch

    from aclnet_kd.evaluate.predict import predict_batches, prepared_batches
    from aclnet_kd.models.state_dict import build_from_params, load_state_dict_file
    from aclnet_kd.train.recipe import _merged_train_section

    arch = entry["arch"]
    model = build_from_params(params, arch)
    cleaned = load_state_dict_file(entry["checkpoint"], model, arch)
    size = int(entry.get("image_size") or _merged_train_section(params, arch, entry["track"])["image_size"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch_size = int(section(params, "predict.batch_size"))
    for split in splits:
        folder = out / split
        folder.mkdir(parents=True)
        _, batches = prepared_batches(prepared, split, size, batch_size, bool(model.is_rgbd))
        for stem, saliency in predict_batches(model, batches, protocol(entry), device):
            if not cv2.imwrite(str(folder / f"{stem}.png"), saliency):
                raise AclnetError(f"{folder / (stem + '.png')}: could not write the map")
    return {"image_size": size, "cleaned": cleaned}


def measure(params: dict, name: str, data_root: Path, out: Path) -> dict[str, Any]:
    """Everything ``aclnet external`` writes, into the (temp) folder ``out``; returns row.json's content."""
    entry = check_entry(params, name)
    track = entry["track"]
    dataset = section(params, f"tracks.{track}.dataset")
    splits = [str(s) for s in section(params, f"tracks.{track}.test_splits")]
    prepared = data_root / str(dataset)
    row: dict[str, Any] = {"name": name, **entry, "kind": kind(entry), "protocol": protocol(entry),
                           "source": source_text(entry), "dataset": dataset, "splits": {}}
    if kind(entry) == "checkpoint":
        if not Path(entry["checkpoint"]).is_file():
            raise AclnetError(f"external.{name}.checkpoint: no such file '{entry['checkpoint']}'")
        row.update(make_maps(params, entry, prepared, splits, out / MAPS_SUBDIR))
    workers = int(section(params, "evaluate.workers"))
    for split in splits:
        folder = out / MAPS_SUBDIR / split if kind(entry) == "checkpoint" else maps_folder(entry, split)
        texts, facts = score_folder(folder, PreparedGt(prepared, split), workers)
        if kind(entry) == "checkpoint":
            facts["maps"] = f"{MAPS_SUBDIR}/{split}"  # inside this row's folder, wherever it ends up
        (out / split).mkdir()
        atomic_write_texts({out / split / "metrics.json": texts["metrics"], out / split / "curves.csv":
                            texts["curves"], out / split / "per_image.csv": texts["per_image"]})
        row["splits"][split] = facts
    (out / ROW_FILE).write_text(json.dumps(row, indent=2) + "\n")
    return row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", action="append", required=True, type=Path,
                        help="params.yaml, then optional presets merged over it (repeatable)")
    parser.add_argument("--name", required=True, help="the entry of params `external` to measure")
    parser.add_argument("--data-root", type=Path, default=Path("data/prepared"),
                        help="folder of prepared datasets (the GT of the track's test splits)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write (results/external/NAME)")


def main(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    with staged_dir(args.out) as tmp:
        row = measure(params, args.name, args.data_root, tmp)
    for split, facts in row["splits"].items():
        scores = json.loads((args.out / split / "metrics.json").read_text())
        note = f", {facts['resized']} resized to the GT's size" if facts["resized"] else ""
        print(f"{args.name} ({row['label']}), {split}: {facts['n']} maps{note}: "
              + "  ".join(f"{k} {scores[k]:.3f}" for k in ("Sm", "MAE", "maxF", "maxE")))
    return 0
