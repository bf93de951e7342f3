"""The two real on-disk layouts, read into samples paired by file stem (never by sorted order).

rail (NEU RSDDS-AUG)                      sod (RGB-D salient object detection)
  ROOT/train/{rgb,d,gt}/                    ROOT/train/{RGB,depth,GT}/
  ROOT/test/{rgb,d,gt}/                     ROOT/test/<SET>/{RGB,depth,GT}/   SET in test_sets (NJU2K, NLPR, STERE)

Folder names match case-insensitively. Files with other extensions and hidden files are ignored. A stem
present in one modality folder but not the others, or present twice with different extensions, is a
problem reported by name; the caller decides what to do with the list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from aclnet_kd.io import IMAGE_SUFFIXES

LAYOUTS = ("rail", "sod")
MODALITY_DIRS = {"rail": ("rgb", "d", "gt"), "sod": ("RGB", "depth", "GT")}
DEFAULT_SOD_TEST_SETS = ("NJU2K", "NLPR", "STERE")


@dataclass(frozen=True)
class SampleFiles:
    """One sample's three source files. ``id`` is the shared file stem."""

    id: str
    split: str
    rgb: Path
    depth: Path
    gt: Path


@dataclass(frozen=True)
class Problem:
    """What is wrong with one file (or folder)."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _find_dir(parent: Path, name: str) -> Path | None:
    exact = parent / name
    if exact.is_dir():
        return exact
    if parent.is_dir():
        for child in sorted(parent.iterdir()):
            if child.is_dir() and child.name.lower() == name.lower():
                return child
    return None


def _not_a_file(path: Path) -> str | None:
    """Why an entry named like an image is not one (a folder, a broken link or a link loop), else None."""
    if path.is_file():
        return None
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "symbolic link loop, not an image file"
        except OSError:
            return f"broken symbolic link (to '{os.readlink(path)}'), not an image file"
    if path.is_dir():
        return "is a folder, not an image file"
    return "not a regular file"


def _images_by_stem(folder: Path, problems: list[Problem]) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        why = _not_a_file(path)
        if why is not None:   # named like an image: say what it really is, not "no matching RGB"
            problems.append(Problem(str(path), why))
            continue
        if path.stem in by_stem:
            problems.append(Problem(str(path), f"stem '{path.stem}' appears twice in this folder "
                                               f"(also {by_stem[path.stem].name})"))
            continue
        by_stem[path.stem] = path
    return by_stem


def pair_by_stem(split: str, split_dir: Path, dir_names: tuple[str, str, str],
                 problems: list[Problem]) -> list[SampleFiles]:
    """Pair the files of ``split_dir/{rgb,depth,gt}`` by stem; append what is missing to ``problems``."""
    folders = []
    for name in dir_names:
        folder = _find_dir(split_dir, name)
        if folder is None:
            problems.append(Problem(str(split_dir / name), "folder not found"))
        folders.append(folder)
    if any(folder is None for folder in folders):
        return []
    rgb, depth, gt = (_images_by_stem(folder, problems) for folder in folders)
    modalities = (("RGB", rgb, folders[0]), ("depth", depth, folders[1]), ("GT", gt, folders[2]))
    samples = []
    for stem in sorted(set(rgb) | set(depth) | set(gt)):
        present = [(kind, files[stem]) for kind, files, _ in modalities if stem in files]
        missing = [(kind, folder) for kind, files, folder in modalities if stem not in files]
        if missing:
            where = ", ".join(f"{kind} in {folder}" for kind, folder in missing)
            problems.append(Problem(str(present[0][1]), f"no matching {where} for stem '{stem}'"))
            continue
        samples.append(SampleFiles(stem, split, rgb[stem], depth[stem], gt[stem]))
    return samples


def discover(layout: str, root: Path, test_sets: tuple[str, ...] = DEFAULT_SOD_TEST_SETS,
             extra_train: tuple[str, ...] = ()) -> tuple[dict[str, list[SampleFiles]], list[Problem]]:
    """All samples of a dataset folder, by source split (``train`` and the test splits).

    ``extra_train`` (sod): folders relative to ``root``, each with {RGB,depth,GT}, whose samples join
    ``train`` (e.g. DUT-RGBD beside NJU2K + NLPR). Their ids are prefixed with the folder's name, so stems
    shared with another dataset stay distinct.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        return {}, [Problem(str(root), "dataset root folder not found")]
    split_dirs: dict[str, Path | None] = {"train": _find_dir(root, "train")}
    if layout == "rail":
        split_dirs["test"] = _find_dir(root, "test")
    else:
        test_dir = _find_dir(root, "test")
        for name in test_sets:
            split_dirs[name] = _find_dir(test_dir, name) if test_dir is not None else None
    splits: dict[str, list[SampleFiles]] = {}
    for split, split_dir in split_dirs.items():
        if split_dir is None:
            expected = root / split if split == "train" or layout == "rail" else root / "test" / split
            problems.append(Problem(str(expected), "split folder not found"))
            continue
        splits[split] = pair_by_stem(split, split_dir, MODALITY_DIRS[layout], problems)
    for part in extra_train:
        part_dir = root / part
        if not part_dir.is_dir():
            problems.append(Problem(str(part_dir), "extra_train folder not found"))
            continue
        samples = pair_by_stem("train", part_dir, MODALITY_DIRS[layout], problems)
        splits.setdefault("train", []).extend(replace(s, id=f"{part_dir.name}_{s.id}") for s in samples)
    return splits, problems
