"""SaliencyDataset: output contract, preprocessing, and seeded, worker-independent augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aclnet_kd.data import SaliencyDataset, open_prepared
from aclnet_kd.data.dataset import IMAGENET_MEAN, IMAGENET_STD, hsv_jitter
from aclnet_kd.errors import AclnetError


def _batches(dataset, workers: int, epoch: int) -> list[dict]:
    dataset.set_epoch(epoch)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(100 + epoch))
    return list(loader)


def test_item_contract(prepared_rail):
    dataset = SaliencyDataset(prepared_rail, "train", image_size=64, augment=True, seed=0)
    assert len(dataset) == 12
    item = dataset[3]
    assert set(item) == {"rgb", "depth", "gt", "index"} and item["index"] == 3
    assert item["rgb"].shape == (3, 64, 64) and item["rgb"].dtype == torch.float32
    assert item["depth"].shape == (1, 64, 64) and 0.0 <= item["depth"].min() <= item["depth"].max() <= 1.0
    assert set(torch.unique(item["gt"]).tolist()) <= {0.0, 1.0}
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_without_augmentation_matches_the_cache(prepared_rail):
    dataset = SaliencyDataset(prepared_rail, "test", augment=False)
    rgb, depth, gt = (np.asarray(a) for a in dataset.raw(2))
    item = dataset[2]
    restored = (item["rgb"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255
    np.testing.assert_allclose(restored, rgb, atol=1e-3)
    np.testing.assert_allclose(item["depth"][0].numpy() * 255, depth, atol=1e-3)
    np.testing.assert_array_equal(item["gt"][0].numpy() * 255, gt)


def test_image_size_differs_from_cache_size(prepared_rail):
    for size in (48, 80):
        item = SaliencyDataset(prepared_rail, "val", image_size=size, augment=True)[0]
        assert item["rgb"].shape == (3, size, size) and item["gt"].shape == (1, size, size)
        assert set(torch.unique(item["gt"]).tolist()) <= {0.0, 1.0}   # nearest keeps GT binary


def test_flip_keeps_modalities_aligned(prepared_rail):
    dataset = SaliencyDataset(prepared_rail, "train", augment=True, seed=1)
    flipped = 0
    for index in range(len(dataset)):
        _, depth, gt = (np.asarray(a) for a in dataset.raw(index))
        item = dataset[index]
        out_depth, out_gt = item["depth"][0].numpy() * 255, item["gt"][0].numpy() * 255
        is_flipped = not np.allclose(out_depth, depth, atol=1e-3)
        flipped += is_flipped
        expected = (depth[:, ::-1], gt[:, ::-1]) if is_flipped else (depth, gt)
        np.testing.assert_allclose(out_depth, expected[0], atol=1e-3)    # depth: flip only, no jitter
        np.testing.assert_array_equal(out_gt, expected[1])
    assert 0 < flipped < len(dataset)


def test_hsv_jitter_ranges():
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        out = hsv_jitter(rgb, rng)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int).mean() - rgb.astype(int).mean()) < 40   # value shift is at most 25


def test_same_seed_same_batches_whatever_the_workers(prepared_rail):
    dataset = SaliencyDataset(prepared_rail, "train", image_size=64, augment=True, seed=7)
    serial = _batches(dataset, workers=0, epoch=1)
    parallel = _batches(dataset, workers=2, epoch=1)
    for a, b in zip(serial, parallel):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["rgb"], b["rgb"])
    other_epoch = _batches(dataset, workers=0, epoch=2)
    assert not all(torch.equal(a["rgb"], b["rgb"]) for a, b in zip(serial, other_epoch))
    other_seed = SaliencyDataset(prepared_rail, "train", image_size=64, augment=True, seed=8)
    other_seed.set_epoch(1)
    assert not torch.equal(other_seed[0]["rgb"], dataset[0]["rgb"])


def test_open_prepared_errors_name_the_file(tmp_path, prepared_rail):
    with pytest.raises(AclnetError, match="meta.json: not found"):
        open_prepared(tmp_path)
    data = open_prepared(prepared_rail)
    with pytest.raises(AclnetError, match="no split 'NJU2K'"):
        data.ids("NJU2K")
    with pytest.raises(AclnetError, match="original-size GT missing"):
        data.gt_original("test", "no-such-id")
    gt = data.gt_original("test", data.ids("test")[0])
    assert gt.dtype == np.uint8 and gt.shape == (96, 96) and set(np.unique(gt)) <= {0, 255}


def test_uint8_output_normalised_per_batch_equals_float_output(tmp_path):
    # The training loader's fast path (uint8 items + normalize_batch) gives the float path's tensors.
    from torch.utils.data import default_collate

    from aclnet_kd.data import normalize_batch
    from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset

    spec = PrepareSpec(name="synthetic-rail", source="synthetic-rail", image_size=64, cache_size=64,
                       num_train=6, num_test=2, val_size=2)
    prepare_dataset(spec, tmp_path / "prep", tmp_path / "raw")
    as_float = SaliencyDataset(tmp_path / "prep", "train", 64, augment=True, seed=3)
    as_uint8 = SaliencyDataset(tmp_path / "prep", "train", 64, augment=True, seed=3, output="uint8")
    expected = default_collate([as_float[i] for i in range(4)])
    raw = default_collate([as_uint8[i] for i in range(4)])
    assert raw["rgb"].dtype == torch.uint8 and raw["rgb"].shape == (4, 64, 64, 3)
    got = normalize_batch(raw)
    for key in ("rgb", "depth", "gt"):
        assert got[key].shape == expected[key].shape
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=2e-6)
    assert got["rgb"].is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(AclnetError, match="output"):
        SaliencyDataset(tmp_path / "prep", "train", 64, output="half")


def test_training_set_of_two_splits(tmp_path):
    # `paper` selection trains on train + val: split 0 is exactly the single-split dataset, split 1 follows
    # it with its own augmentation stream (sample i of each split gets different flips and jitter).
    from aclnet_kd.data import TrainingSet
    from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset

    spec = PrepareSpec(name="synthetic-rail", source="synthetic-rail", image_size=32, cache_size=32,
                       num_train=6, num_test=2, val_size=2)
    prepare_dataset(spec, tmp_path / "prep", tmp_path / "raw")
    both = TrainingSet(tmp_path / "prep", ["train", "val"], 32, seed=1)
    train = SaliencyDataset(tmp_path / "prep", "train", 32, augment=True, seed=1, output="uint8")
    val = SaliencyDataset(tmp_path / "prep", "val", 32, augment=True, seed=1, output="uint8")
    assert len(both) == 6 and both.splits == ["train", "val"]
    both.set_epoch(2)
    train.set_epoch(2)
    assert all(torch.equal(both[i]["rgb"], train[i]["rgb"]) for i in range(4))
    val.stream = 1
    val.set_epoch(2)
    assert torch.equal(both[4]["rgb"], val[0]["rgb"])
    val.stream = 0
    assert not all(torch.equal(both[4 + i]["rgb"], val[i]["rgb"]) for i in range(2))
