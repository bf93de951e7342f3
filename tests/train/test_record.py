"""RunRecord: a run.json that is not a record of this version is an error naming the file and the fields."""

from __future__ import annotations

import json

import pytest

from aclnet_kd.errors import AclnetError
from aclnet_kd.train.record import RunRecord
from record_helper import run_record_json


def test_round_trip(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(run_record_json(seed=3))
    record = RunRecord.read(path)
    assert record.seed == 3 and RunRecord.from_dict(record.to_dict()) == record


@pytest.mark.parametrize("edit, names", [({"drop": "image_size"}, ["missing ['image_size']"]),
                                         ({"add": "best_epoch"}, ["unknown ['best_epoch']"])])
def test_foreign_record_names_the_fields(tmp_path, edit, names):
    data = json.loads(run_record_json())
    data.pop(edit.get("drop", ""), None)
    if "add" in edit:
        data[edit["add"]] = 1
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AclnetError) as err:
        RunRecord.read(path)
    assert str(path) in str(err.value) and all(name in str(err.value) for name in names)


def test_plateau_figures_round_trip_and_old_records_read(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(run_record_json(converged=False, plateau={"metric": "val/sm", "gain": 0.04, "window": 2}))
    record = RunRecord.read(path)
    assert record.converged is False and record.plateau["gain"] == 0.04
    assert RunRecord.from_dict(json.loads(record.to_json())) == record
    data = json.loads(run_record_json())
    data.pop("converged"), data.pop("plateau")  # a record written before the rule: not judged
    assert RunRecord.from_dict(data).converged is None


def test_record_without_the_later_optional_fields_still_reads():
    """seconds_per_epoch and kd_params came with table3: a run.json written before them reads as None."""
    data = json.loads(run_record_json(seconds_per_epoch=2.5, kd_params=12))
    assert RunRecord.from_dict(data).seconds_per_epoch == 2.5
    for key in ("seconds_per_epoch", "kd_params", "converged"):
        data.pop(key)
    record = RunRecord.from_dict(data)
    assert record.seconds_per_epoch is None and record.kd_params is None
