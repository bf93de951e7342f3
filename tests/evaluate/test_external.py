"""`aclnet external` (params `external`): a maps folder scored against the prepared GT (equal to `aclnet
evaluate`), with a missing stem, an extra stem, a corrupt PNG, a stray non-image file and a size mismatch;
a checkpoint entry in the release's format; the params checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from aclnet_kd.cli import main as aclnet
from aclnet_kd.config import load_params
from aclnet_kd.errors import AclnetError
from params_helper import write_params
from test_plain_state_dict import release_state


def _params(tmp_path: Path, prepared: Path, external: dict) -> Path:
    """params whose rail track reads the prepared test dataset (named by its folder)."""
    return write_params(tmp_path / "params.yaml", {
        "datasets": {prepared.name: {"source": "rail", "root": str(prepared)}},
        "tracks": {"rail": {"dataset": prepared.name, "test_splits": ["test"]}},
        "models": {"teacher": {"backbone": "shunted_t"}}, "train": {"image_size": 64},
        "evaluate": {"workers": 1}, "external": external,
    })


@pytest.fixture()
def maps(tmp_path: Path, tiny_prepared: Path) -> Path:
    """GT-sized maps of the tiny rail test split (a blurred GT: a decent predictor)."""
    from aclnet_kd.data import open_prepared

    prepared = open_prepared(tiny_prepared)
    folder = tmp_path / "published" / "test"
    folder.mkdir(parents=True)
    for stem in prepared.ids("test"):
        gt = np.asarray(prepared.gt_original("test", stem))
        cv2.imwrite(str(folder / f"{stem}.png"), cv2.GaussianBlur(gt, (9, 9), 3))
    return folder


def _run(tmp_path: Path, tiny_prepared: Path, entry: dict, capsys=None) -> tuple[int, Path]:
    params = _params(tmp_path, tiny_prepared, {"rel": {"track": "rail", "label": "X (released)", **entry}})
    out = tmp_path / "results" / "rel"
    code = aclnet(["external", "--params", str(params), "--name", "rel", "--data-root", str(tiny_prepared.parent),
                   "--out", str(out)])
    return code, out


def test_maps_row_equals_aclnet_evaluate(tmp_path, tiny_prepared, maps) -> None:
    code, out = _run(tmp_path, tiny_prepared, {"paper_row": "ACLNet-S*", "maps": str(maps.parent / "{split}")})
    assert code == 0
    assert aclnet(["evaluate", "--pred", str(maps), "--gt", str(tiny_prepared), "--split", "test",
                   "--out", str(tmp_path / "m.json"), "--curves", str(tmp_path / "c.csv"), "--workers", "1"]) == 0
    assert (out / "test" / "metrics.json").read_text() == (tmp_path / "m.json").read_text()
    assert (out / "test" / "curves.csv").read_text() == (tmp_path / "c.csv").read_text()
    row = json.loads((out / "row.json").read_text())
    assert row["protocol"] == "as published" and row["splits"]["test"] == {
        "maps": str(maps), "n": 3, "resized": 0, "resized_stems": []}


def test_size_mismatch_is_resized_and_recorded(tmp_path, tiny_prepared, maps) -> None:
    stem = sorted(maps.iterdir())[0]
    cv2.imwrite(str(stem), cv2.resize(cv2.imread(str(stem), cv2.IMREAD_GRAYSCALE), (64, 64)))  # network size
    code, out = _run(tmp_path, tiny_prepared, {"paper_row": None, "maps": str(maps.parent / "{split}")})
    assert code == 0
    facts = json.loads((out / "row.json").read_text())["splits"]["test"]
    assert facts["resized"] == 1 and facts["resized_stems"] == [stem.stem]


@pytest.mark.parametrize("damage, message", [
    ("missing", "have no map in"), ("extra", "have no ground truth in"), ("corrupt", "unreadable image"),
    ("stray", "not image files"),
])
def test_bad_maps_folder_is_named_and_nothing_written(tmp_path, tiny_prepared, maps, damage, message,
                                                      capsys) -> None:
    first = sorted(maps.iterdir())[0]
    if damage == "missing":
        first.unlink()
        named = first.name
    elif damage == "extra":
        shutil.copy(first, maps / "zz_extra.png")
        named = "zz_extra.png"
    elif damage == "corrupt":
        first.write_bytes(first.read_bytes()[:20])
        named = first.name
    else:
        (maps / "notes.txt").write_text("hi")
        named = "notes.txt"
    code, out = _run(tmp_path, tiny_prepared, {"paper_row": None, "maps": str(maps.parent / "{split}")})
    err = capsys.readouterr().err
    assert code == 2 and message in err and named in err, err
    assert not out.exists() and not list(out.parent.glob(".*"))  # no partial metrics, no temp folder left


def test_checkpoint_row_release_format(tmp_path, tiny_prepared) -> None:
    path = tmp_path / "ACLNet_S_KD.pth"
    torch.save(release_state(prefix="module."), path)
    code, out = _run(tmp_path, tiny_prepared, {"paper_row": "ACLNet-S*", "checkpoint": str(path), "arch": "student"})
    assert code == 0
    row = json.loads((out / "row.json").read_text())
    assert row["protocol"] == "release_minmax" and row["image_size"] == 64 and len(row["cleaned"]) == 2
    # release_minmax maps are made at network size: every one is resized to its GT, and the row says so
    assert row["splits"]["test"]["resized"] == 3 and row["splits"]["test"]["maps"] == "maps/test"
    saliency = cv2.imread(str(next((out / "maps" / "test").iterdir())), cv2.IMREAD_GRAYSCALE)
    assert saliency.shape == (64, 64) and saliency.min() == 0 and saliency.max() == 255
    assert {"Sm", "MAE", "maxF", "maxE"} <= set(json.loads((out / "test" / "metrics.json").read_text()))


def test_missing_checkpoint_is_named(tmp_path, tiny_prepared, capsys) -> None:
    code, out = _run(tmp_path, tiny_prepared, {"paper_row": None, "checkpoint": "nope.pth", "arch": "student"})
    assert code == 2 and "external.rel.checkpoint: no such file 'nope.pth'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("entry, message", [
    ({"maps": "m/{split}", "checkpoint": "a.pth", "arch": "student"}, "not both"),
    ({}, "not neither"),
    ({"checkpoint": "a.pth"}, "'arch' is a dependency of 'checkpoint'"),
    ({"maps": "m/{split}", "protocol": "sigmoid"}, "apply to a checkpoint"),
    ({"maps": "m/{split}", "paper_row": "BBS-Net"}, "external.e.paper_row: 'BBS-Net' is not a reported row of Table II"),
    ({"maps": "m/NJU2K"}, "has no {split}, but track sod has 3 test splits"),
    ({"maps": "m/{split}", "colour": "red"}, "unknown key external.e.colour"),
    ({"maps": "m/{split}", "label": "ACLNet-S*"}, "external.e.label: 'ACLNet-S*' is the name of a reported row"),
])
def test_params_checks(tmp_path, entry, message) -> None:
    path = write_params(tmp_path / "p.yaml")
    params = yaml.safe_load(path.read_text())
    params["external"] = {"e": {"track": "sod", "label": "L", **entry} if "label" not in entry else
                          {"track": "sod", **entry}}
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(AclnetError) as err:
        load_params(path)
    assert message in str(err.value)


def test_params_accept_the_example_preset(repo_root) -> None:
    params = load_params([repo_root / "params.yaml", repo_root / "config" / "external-example.yaml"])
    assert params["external"] and all(e["paper_row"] for e in params["external"].values())


def test_facts_agree_with_the_plan_and_the_report() -> None:
    """external.py repeats two facts so that config (which every stage imports) need not import the plan."""
    from aclnet_kd import external
    from aclnet_kd.report.reported import REPORTED_CSV
    from aclnet_kd.workflow.plan import PAPER_TABLES

    assert external.PAPER_TABLE_IDS == {track: table_id for track, (_, table_id) in PAPER_TABLES.items()}
    assert external.REPORTED_CSV.resolve() == REPORTED_CSV.resolve()
    assert "ACLNet-S*" in external.reported_models("I") and "BBS" in external.reported_models("II")
