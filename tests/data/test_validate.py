"""Every bad-input kind fails with a report naming the file, and nothing is written."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from aclnet_kd import cli
from aclnet_kd.data import prepare
from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset
from aclnet_kd.data.validate import ValidationError
from aclnet_kd.errors import AclnetError

STEMS = {"train": ["a", "b", "c"], "test": ["t1", "t2"]}


def _prepare(root: Path, out: Path, **options):
    spec = PrepareSpec(name="real", source="rail", root=str(root), cache_size=32, **options)
    return prepare_dataset(spec, out)


def _fails(root: Path, out: Path, *fragments: str, **options) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _prepare(root, out, **options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    # Nothing written: no output folder and no temporary folder left beside it.
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    return info.value


def test_missing_counterpart_names_the_stem_and_folder(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    (root / "train" / "gt" / "b.png").unlink()
    _fails(root, tmp_path / "out", "train/rgb/b.bmp", "no matching GT", "'b'")


def test_unreadable_file(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    (root / "test" / "d" / "t2.tiff").write_bytes(b"this is not a tiff")
    (root / "train" / "rgb" / "a.bmp").write_bytes(b"")
    error = _fails(root, tmp_path / "out", "test/d/t2.tiff", "not a decodable image", "train/rgb/a.bmp", "empty")
    assert len(error.problems) == 2   # every problem is reported, not just the first


def test_size_mismatch_strict_and_declared_resize_rule(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    rgb = cv2.imread(str(root / "train" / "rgb" / "c.bmp"))
    folders.write_image(root / "train" / "rgb" / "c.bmp", cv2.resize(rgb, (80, 60)))        # same aspect, 2x
    _fails(root, tmp_path / "out", "train/rgb/c.bmp", "60x80", "30x40", "strict")
    meta = _prepare(root, tmp_path / "ok", size_rule="resize")                        # declared rule: fine
    assert meta["splits"]["train"] == 3
    folders.write_image(root / "train" / "rgb" / "c.bmp", cv2.resize(rgb, (40, 40)))        # aspect differs
    _fails(root, tmp_path / "out2", "train/rgb/c.bmp", "aspect ratios differ", size_rule="resize")


def test_gt_not_binary(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    ramp = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))
    folders.write_image(root / "test" / "gt" / "t1.png", ramp)
    _fails(root, tmp_path / "out", "test/gt/t1.png", "not binary-like")


def test_empty_dataset_and_missing_root(tmp_path):
    for split in ("train", "test"):
        for name in ("rgb", "d", "gt"):
            (tmp_path / "raw" / split / name).mkdir(parents=True)
    _fails(tmp_path / "raw", tmp_path / "out", "split is empty")
    _fails(tmp_path / "nowhere", tmp_path / "out", "dataset root folder not found")


def test_missing_modality_folder(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    for path in (root / "test" / "gt").iterdir():
        path.unlink()
    (root / "test" / "gt").rmdir()
    _fails(root, tmp_path / "out", "test/gt", "folder not found")


def test_expected_split_sizes(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    _fails(root, tmp_path / "out", "has 3 complete samples, params expect 1500", expected={"train": 1500, "test": 2})
    assert _prepare(root, tmp_path / "ok", expected={"train": 3, "test": 2})["splits"]["test"] == 2


def test_failed_prepare_keeps_the_previous_output(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", STEMS)
    out = tmp_path / "out"
    _prepare(root, out)
    before = (out / "manifest.csv").read_bytes()
    (root / "train" / "gt" / "a.png").write_bytes(b"junk")
    with pytest.raises(ValidationError):
        _prepare(root, out)
    assert (out / "manifest.csv").read_bytes() == before


def test_cli_exits_nonzero_with_report(tmp_path, folders, capsys):
    root = folders.rail(tmp_path / "raw", STEMS)
    (root / "train" / "d" / "c.tiff").unlink()
    code = cli.main(["prepare", "--layout", "rail", "--root", str(root), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "train/rgb/c.bmp" in err and "no matching depth" in err
    assert not (tmp_path / "out").exists()


def test_bad_params_keys_are_named(tmp_path):
    from params_helper import write_params

    for name, spec, fragment in (
            ("x", {"source": "synthetic-rail", "num_trian": 3}, "unknown key datasets.x.num_trian"),
            ("y", {"source": "rail"}, "datasets.y: 'root' is a required property"),
            ("z", {"source": "synthetic-rail", "depth_polarity": "up"}, "datasets.z.depth_polarity: 'up' is not one of"),
            ("w", None, "missing key 'datasets.w'")):
        params = write_params(tmp_path / f"{name}.yaml", {"datasets": {name: spec}} if spec else None)
        with pytest.raises(AclnetError, match=re.escape(fragment)):
            parser = argparse.ArgumentParser()
            prepare.add_arguments(parser)
            prepare.main(parser.parse_args(["--params", str(params), "--dataset", name, "--out", str(tmp_path / name)]))
        assert not (tmp_path / name).exists()


def test_entries_named_like_images_are_named_for_what_they_are(tmp_path, folders):
    """A folder, a broken link and a link loop named like an image: each is named, not "no matching RGB"."""
    root = folders.rail(tmp_path / "raw", STEMS)
    (root / "train" / "rgb" / "b.bmp").unlink()
    (root / "train" / "rgb" / "b.bmp").mkdir()                                # a folder named rgb/b.bmp
    (root / "train" / "rgb" / "c.bmp").unlink()
    (root / "train" / "rgb" / "c.bmp").symlink_to("c.bmp")                    # a link to itself
    (root / "test" / "d" / "t1.tiff").unlink()
    (root / "test" / "d" / "t1.tiff").symlink_to("gone.tiff")                 # a broken link
    error = _fails(root, tmp_path / "out", "train/rgb/b.bmp: is a folder, not an image file",
                   "train/rgb/c.bmp: symbolic link loop", "test/d/t1.tiff: broken symbolic link")
    wrong = [p for p in error.problems if "no matching RGB" in p.what or "no matching depth" in p.what]
    assert len(wrong) == 3   # the stems still lack a counterpart, said beside the real cause
    assert {Path(p.path).name for p in error.problems if "image file" in p.what} == {"b.bmp", "c.bmp", "t1.tiff"}


def test_flat_depth_is_warned_and_counted_with_greyscale_rgb(tmp_path, folders, capsys):
    root = folders.rail(tmp_path / "raw", STEMS, bits=16)
    for stem, bits in (("a", np.uint16), ("t2", np.uint16)):
        split = "train" if stem == "a" else "test"
        folders.write_image(root / split / "d" / f"{stem}.tiff", np.full((30, 40), 1234, bits))
    out = tmp_path / "out"
    assert cli.main(["prepare", "--layout", "rail", "--root", str(root), "--out", str(out),
                     "--cache-size", "16"]) == 0
    printed = capsys.readouterr()
    assert "flat depth maps: 2, greyscale RGB files: 5" in printed.out   # the fixture's RGB is grey
    for name in ("train/d/a.tiff", "test/d/t2.tiff"):
        assert re.search(rf"warning: \S*{name}: depth map is constant", printed.err), printed.err
    meta = (out / "meta.json").read_text()
    assert '"train/d/a.tiff"' in meta and '"grey_rgb": 5' in meta
