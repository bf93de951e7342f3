"""``--binary``'s defect list on a drawn map of known components (areas, boxes, scores, min area, 8-connectivity),
an image without defects recorded as such, and where the threshold comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aclnet_kd.deploy.defects import COLUMNS, binary_settings, csv_rows, detect, write_outputs
from aclnet_kd.errors import AclnetError


def _drawn() -> np.ndarray:
    saliency = np.zeros((40, 50), np.uint8)
    saliency[5:10, 10:20] = 200  # defect A: 5 x 10 = 50 px at x 10, y 5
    saliency[7, 12] = 255  # its peak
    saliency[20:23, 30:32] = 140  # defect B: 3 x 2 = 6 px, then a diagonal neighbour (8-connected)
    saliency[23, 32] = 140  # -> 7 px, box x 30, y 20, w 3, h 4
    saliency[35, 2] = 250  # a lone pixel: under min_area 2
    saliency[30:33, 40:43] = 100  # under the threshold 0.5 (level 128): not a defect
    return saliency


def test_detect_known_components() -> None:
    mask, defects = detect(_drawn(), threshold=0.5, min_area=2)
    assert [(d["area"], d["x"], d["y"], d["w"], d["h"]) for d in defects] == [(50, 10, 5, 10, 5), (7, 30, 20, 3, 4)]
    assert defects[0]["score_max"] == 1.0 and defects[0]["score_mean"] == pytest.approx((49 * 200 + 255) / 50 / 255)
    assert defects[1]["score_max"] == pytest.approx(140 / 255) == defects[1]["score_mean"]
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert (mask > 0).sum() == 57 and mask[35, 2] == 0  # the mask shows exactly the listed defects
    _, with_lone = detect(_drawn(), threshold=0.5, min_area=1)
    assert len(with_lone) == 3


def test_defects_csv_records_images_without_defects(tmp_path: Path) -> None:
    settings = binary_settings({"threshold": 0.5, "min_area": 2, "rule": "max_f", "split": "val"}, None, None, "x.pt")
    assert settings.threshold == 0.5 and settings.min_area == 2 and "x.pt" in settings.source
    written, found = write_outputs(tmp_path, [("drawn", _drawn()), ("empty", np.zeros((8, 8), np.uint8))], settings)
    assert (written, found) == (2, 2)
    lines = (tmp_path / "defects.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == "drawn,2,1,50,10,5,10,5,1.0000,0.7886"  # (49 * 200 + 255) / 50 / 255
    assert lines[3] == "empty,0,,,,,,,," and len(lines[3].split(",")) == len(COLUMNS)
    assert csv_rows("e", []) == ["e,0,,,,,,,,"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["defects.csv", "drawn.png", "empty.png"]


def test_binary_settings_sources_and_errors() -> None:
    recorded = {"threshold": 0.3, "min_area": 5, "rule": "max_f", "split": "val"}
    assert binary_settings(recorded, 0.7, None, "m.json").threshold == 0.7  # --threshold wins
    assert binary_settings(recorded, 0.7, None, "m.json").min_area == 5
    assert binary_settings(None, 0.7, None, "m.json").min_area == 0
    with pytest.raises(AclnetError, match=r"m\.pt: records no operating point .*--threshold"):
        binary_settings(None, None, None, "m.pt")
    with pytest.raises(AclnetError, match="paper selection"):
        binary_settings({"threshold": None, "reason": "paper selection"}, None, None, "m.pt")
    with pytest.raises(AclnetError, match="must be a number in"):
        binary_settings(recorded, 1.2, None, "m.pt")
