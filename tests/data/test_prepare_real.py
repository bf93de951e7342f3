"""Hand-made folders in both real layouts prepare correctly: pairing by stem, 16-bit depth, polarity."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from aclnet_kd import cli
from aclnet_kd.data import open_prepared
from aclnet_kd.errors import AclnetError
from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset

# Stems whose sorted order differs from creation order and from any numeric order; "10" < "9" as text.
ODD_STEMS = {"train": ["9", "10", "b_2", "a-1", "001"], "test": ["z", "y7", "100"]}


def _stripe_width(gt: np.ndarray) -> int:
    """The fixture draws a GT stripe of width index + 1: recover the index from a GT."""
    return int((gt > 127).any(axis=0).sum())


def test_rail_layout_pairs_by_stem_with_16bit_depth(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", ODD_STEMS, bits=16)
    # A file only some loaders would trip on: an extra non-image file and a hidden file.
    (root / "train" / "rgb" / "notes.txt").write_text("ignored")
    (root / "train" / "d" / ".DS_Store").write_bytes(b"\0")
    code = cli.main(["prepare", "--layout", "rail", "--root", str(root), "--out", str(tmp_path / "out"),
                     "--cache-size", "32", "--val-size", "1", "--seed", "3", "--preview", str(tmp_path / "p.png")])
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 0
    data = open_prepared(tmp_path / "out")
    assert data.meta["layout"] == "rail" and data.meta["synthetic"] is False
    assert data.meta["splits"] == {"train": 4, "val": 1, "test": 3} and data.test_splits == ["test"]
    created_index = {stem: i for names in ODD_STEMS.values() for i, stem in enumerate(names)}
    for split in ("train", "val", "test"):
        arrays = data.arrays(split)
        assert arrays["rgb"].shape[1:] == (32, 32, 3)
        for position, sample_id in enumerate(data.ids(split)):
            index = created_index[sample_id]
            # Each modality still belongs to the same stem: RGB level, depth level and GT stripe agree.
            assert _stripe_width(data.gt_original(split, sample_id)) == index + 1
            assert abs(int(arrays["rgb"][position][5, 5, 0]) - (10 * index) % 250) <= 1
            expected_depth = round((20 + 10 * index) * 257 / 65535 * 255)   # 16-bit min-max (0..65535)
            assert abs(int(arrays["depth"][position][5, 5]) - expected_depth) <= 1
            assert data.gt_original(split, sample_id).shape == (30, 40)      # original size, not 32x32
    # The manifest records where each file came from and its checksum.
    row = next(r for r in data.manifest if r["id"] == "10")
    assert row["rgb_path"] == "train/rgb/10.bmp" and row["depth_path"] == "train/d/10.tiff"
    assert (row["height"], row["width"]) == ("30", "40")
    assert row["depth_sha256"] == hashlib.sha256((root / "train" / "d" / "10.tiff").read_bytes()).hexdigest()


def test_val_split_is_seeded_and_disjoint(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", {"train": [f"s{i}" for i in range(12)], "test": ["t"]}, bits=8)
    ids = []
    for run, seed in enumerate((5, 5, 6)):
        spec = PrepareSpec(name="r", source="rail", root=str(root), cache_size=16, val_size=4, seed=seed)
        prepare_dataset(spec, tmp_path / f"out{run}")
        data = open_prepared(tmp_path / f"out{run}")
        assert not set(data.ids("val")) & set(data.ids("train"))
        ids.append(data.ids("val"))
    assert ids[0] == ids[1] and ids[0] != ids[2]


def test_near_dark_polarity_is_flipped_in_the_cache(tmp_path, folders):
    root = folders.rail(tmp_path / "raw", {"train": ["a", "b"], "test": ["c"]}, bits=8)
    for polarity in ("near_bright", "near_dark"):
        spec = PrepareSpec(name="r", source="rail", root=str(root), cache_size=16, depth_polarity=polarity)
        prepare_dataset(spec, tmp_path / polarity)
    bright = open_prepared(tmp_path / "near_bright").arrays("train")["depth"].astype(int)
    dark = open_prepared(tmp_path / "near_dark").arrays("train")["depth"].astype(int)
    np.testing.assert_array_equal(bright, 255 - dark)
    assert json.loads((tmp_path / "near_dark" / "meta.json").read_text())["cache_depth"] == "near_bright"


def test_sod_layout_with_configurable_test_sets(tmp_path, folders):
    root = folders.sod(tmp_path / "raw", train=["x3", "x1", "x2"], test_sets={"DES": ["d2", "d1"], "SIP": ["s"]})
    # GT saved as a 0/1 mask (some datasets do this) is read as foreground, not thresholded away.
    gt01 = (folders.sample_arrays(5)[2] > 0).astype(np.uint8)
    folders.write_image(root / "test" / "SIP" / "GT" / "s.png", gt01)
    code = cli.main(["prepare", "--layout", "sod", "--root", str(root), "--out", str(tmp_path / "out"),
                     "--cache-size", "24", "--test-sets", "DES,SIP", "--name", "mini"])
    assert code == 0
    data = open_prepared(tmp_path / "out")
    assert data.meta["name"] == "mini" and data.test_splits == ["DES", "SIP"]
    assert data.meta["splits"] == {"train": 3, "DES": 2, "SIP": 1}
    assert data.ids("DES") == ["d1", "d2"]
    assert _stripe_width(data.gt_original("SIP", "s")) == 6
    assert data.arrays("SIP")["gt"].max() == 255
    row = next(r for r in data.manifest if r["id"] == "d2")
    assert row["rgb_path"] == "test/DES/RGB/d2.jpg" and row["split"] == "DES"


def test_sod_extra_train_folder_joins_train(tmp_path, folders):
    # The release's SOD training root adds DUT-RGBD to NJU2K + NLPR: an extra folder under the root joins
    # train, its ids prefixed with the folder name (a stem shared with train/ stays distinct).
    root = folders.sod(tmp_path / "raw", train=["1", "2"], test_sets={"NJU2K": ["t"]})
    folders.sod(tmp_path / "dut", train=["1", "9"], test_sets={})
    (tmp_path / "dut" / "train").rename(root / "DUT-RGBD")
    spec = PrepareSpec(name="s", source="sod", root=str(root), cache_size=16, test_sets=["NJU2K"],
                       extra_train=["DUT-RGBD"])
    prepare_dataset(spec, tmp_path / "out")
    data = open_prepared(tmp_path / "out")
    assert data.meta["splits"]["train"] == 4 and data.meta["extra_train"] == ["DUT-RGBD"]
    assert sorted(data.ids("train")) == ["1", "2", "DUT-RGBD_1", "DUT-RGBD_9"]
    missing = PrepareSpec(name="s", source="sod", root=str(root), cache_size=16, test_sets=["NJU2K"],
                          extra_train=["DUT"])
    with pytest.raises(AclnetError, match="DUT.*extra_train folder not found"):
        prepare_dataset(missing, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    with pytest.raises(AclnetError, match="extra_train"):
        PrepareSpec(name="r", source="rail", root=str(root), extra_train=["DUT-RGBD"]).check("datasets.r")
