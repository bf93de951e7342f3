"""A run's data, in two steps: :func:`check_inputs` checks everything that needs no model before anything is
written (-> :class:`Inputs`), and :func:`open_data` opens what the run reads (-> :class:`Data`): the training
loader, resumable at any batch, and the datasets validated each epoch."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from aclnet_kd.data.dataset import SaliencyDataset, TrainingSet
from aclnet_kd.data.prepared import open_prepared
from aclnet_kd.errors import AclnetError
from aclnet_kd.train.distributed import DistInfo
from aclnet_kd.train.precision import check_precision
from aclnet_kd.train.recipe import Recipe
from aclnet_kd.train.state import ResumableSampler

TEST_SELECTION_NOTE = "TEST-SET SELECTION (as released): the checkpoint kept is the one with the best test MAE"


@dataclass
class Inputs:
    """The prepared dataset, the splits the run trains on, and how it selects its checkpoint."""

    data_dir: Path
    meta: dict[str, Any]
    train_splits: list[str]
    num_train: int
    selection: dict[str, Any]


@dataclass
class Data(Inputs):
    """:class:`Inputs`, opened: the training set, its sampler and loader, and the validated datasets."""

    train_set: TrainingSet
    sampler: ResumableSampler
    loader: DataLoader
    monitor_sets: dict[str, list]  # label -> datasets validated each epoch

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch


def check_inputs(recipe: Recipe, data_dir: Path, teacher_checkpoint, info: DistInfo) -> Inputs:
    """Every check that needs no model, before anything is written."""
    check_precision(recipe.precision, info.device)
    if recipe.kd and teacher_checkpoint is None:
        raise AclnetError("--kd on needs --teacher CKPT (a teacher's best.pt)")
    if not recipe.kd and teacher_checkpoint is not None:
        raise AclnetError("--teacher is only used with --kd on")
    if recipe.batch_size % info.world_size:
        raise AclnetError(f"params: 'train.batch_size' {recipe.batch_size} is the global batch and must be "
                          f"divisible by the world size {info.world_size}")
    prepared = open_prepared(data_dir)
    selection = selection_info(recipe.selection, recipe.val_split, prepared.test_splits)
    if "train" not in prepared.splits:
        raise AclnetError(f"{data_dir}: no 'train' split (has {prepared.splits})")
    if recipe.selection == "best_val" and recipe.val_split not in prepared.splits:
        raise AclnetError(f"params: 'train.val_split' is '{recipe.val_split}', which {data_dir} does not have "
                          f"(splits {prepared.splits}); best_val selection needs a held-out split")
    train_splits = training_splits(recipe, prepared.splits)
    num_train = sum(prepared.meta["splits"][split] for split in train_splits)
    if num_train < recipe.batch_size:
        raise AclnetError(f"{data_dir}: {num_train} training images, fewer than one batch "
                          f"(train.batch_size {recipe.batch_size}); batches drop the remainder")
    return Inputs(data_dir, prepared.meta, train_splits, num_train, selection)


def training_splits(recipe: Recipe, splits: list[str]) -> list[str]:
    """The splits a run trains on: ``train``, plus the held-out ``val_split`` under ``paper`` selection, which
    mirrors the release (it trained on every train image: 1500 rail, not 1350)."""
    return ["train"] + ([recipe.val_split] if recipe.selection == "paper" and recipe.val_split in splits else [])


def selection_info(protocol: str, val_split: str, test_splits: list[str]) -> dict[str, Any]:
    """What the run record says about checkpoint selection under ``protocol``."""
    if protocol == "best_val":
        return {"protocol": "best_val", "metric": f"{val_split}/mae", "splits": [val_split],
                "test_set_selection": False, "note": f"lowest MAE on the held-out '{val_split}' split",
                "ties": "earliest epoch"}
    if protocol == "paper":
        return {"protocol": "paper", "metric": "test/mae", "splits": list(test_splits),
                "test_set_selection": True, "note": TEST_SELECTION_NOTE,
                "ties": "latest epoch (the release keeps a new best on <=)"}
    return {"protocol": "last", "metric": None, "splits": [], "test_set_selection": False,
            "note": "the final epoch"}


def open_data(inputs: Inputs, recipe: Recipe, info: DistInfo) -> Data:
    """The training loader (resumable at any batch) and the datasets validated each epoch."""
    # uint8 items, normalised per batch on the device: the float conversion is the loader's largest cost.
    train_set = TrainingSet(inputs.data_dir, inputs.train_splits, recipe.image_size, seed=recipe.seed,
                            output="uint8")
    sampler = ResumableSampler(len(train_set), recipe.batch_size, recipe.seed, info.rank, info.world_size)
    # Its own generator: a DataLoader otherwise draws a worker seed from the global RNG at every iter(),
    # which would shift the dropout stream of a run resumed mid-epoch.
    loader = DataLoader(train_set, batch_size=recipe.batch_size // info.world_size, sampler=sampler,
                        num_workers=recipe.num_workers, pin_memory=info.device.type == "cuda", drop_last=True,
                        generator=torch.Generator().manual_seed(recipe.seed))
    monitor_sets = {}
    if recipe.val_split in inputs.meta["splits"] and recipe.val_split not in inputs.train_splits:
        monitor_sets[recipe.val_split] = [SaliencyDataset(inputs.data_dir, recipe.val_split, recipe.image_size)]
    if recipe.selection == "paper":
        monitor_sets["test"] = [SaliencyDataset(inputs.data_dir, split, recipe.image_size)
                                for split in inputs.meta["test_splits"]]
    checked = {f.name: getattr(inputs, f.name) for f in fields(Inputs)}
    return Data(**checked, train_set=train_set, sampler=sampler, loader=loader, monitor_sets=monitor_sets)
