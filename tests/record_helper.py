"""A complete run.json (RunRecord) for report tests, with the fields a test cares about overridden."""

from __future__ import annotations

from aclnet_kd.train.record import RunRecord


def run_record_json(**fields) -> str:
    """``RunRecord.to_json()`` of a finished 2-epoch best_val student run, edited by ``fields``."""
    selection = {"protocol": "best_val", "metric": "val/mae", "splits": ["val"], "test_set_selection": False,
                 "note": "lowest MAE on the held-out 'val' split", "ties": "earliest epoch"}
    selection.update(fields.pop("selection", {}))
    base = dict(role="student", kd=False, kd_weights=None, kd_tau=None, train_kd_modules=None,
                atd_teacher_fix=None, teacher_checkpoint=None, model={"name": "aclnet_s", "cfg": {}},
                dataset="tiny", synthetic=True, data_dir="data/prepared/tiny",
                train_images={"splits": ["train"], "count": 8}, track="rail", selection=selection,
                selected_epoch=2, epochs_done=2, seed=0, device="cpu", precision="fp32", world_size=1, epochs=2,
                image_size=64, batch_size=4, final_metrics={"epoch": 2}, best_metrics={"epoch": 2})
    return RunRecord(**dict(base, **fields)).to_json()
