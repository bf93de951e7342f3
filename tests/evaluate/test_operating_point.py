"""The operating point's threshold search on a hand-computed case (a tiny folder of maps and GTs), the
threshold <-> grey level rule, and the binary metrics at a threshold against hand counts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.binary_metrics import binary_scores, object_counts
from aclnet_kd.evaluate.io import list_images, read_gray_map
from aclnet_kd.evaluate.operating_point import LevelCounts, choose, operating_point, threshold_level


def _folder(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two images. Foreground pixels hold 200, 150, 100; background pixels 150, 50, 0 (and padding 0)."""
    (root / "pred").mkdir(parents=True)
    (root / "gt").mkdir()
    maps = {"a": np.array([[200, 150, 150], [0, 0, 0]], np.uint8), "b": np.array([[100, 50], [0, 0]], np.uint8)}
    gts = {"a": np.array([[255, 255, 0], [0, 0, 0]], np.uint8), "b": np.array([[255, 0], [0, 0]], np.uint8)}
    for stem in maps:
        cv2.imwrite(str(root / "pred" / f"{stem}.png"), maps[stem])
        cv2.imwrite(str(root / "gt" / f"{stem}.png"), gts[stem])
    preds, gt_files = list_images(root / "pred"), list_images(root / "gt")
    return [(read_gray_map(preds[s]), read_gray_map(gt_files[s])) for s in sorted(preds)]


def test_max_f_on_a_hand_computed_case(tmp_path: Path) -> None:
    # By hand, cut "map >= k" (3 foreground pixels; background 150, 50 and six 0s):
    #   k in 151..200: TP 1, FP 0 -> P 1,   R 1/3, F = 1.3/3 / (0.3 + 1/3)   = 0.6842
    #   k in 101..150: TP 2, FP 1 -> P 2/3, R 2/3, F = 2/3
    #   k in  51..100: TP 3, FP 1 -> P 3/4, R 1,   F = 1.3*0.75 / (0.225 + 1) = 0.7959  <- the maximum
    #   k in   1.. 50: TP 3, FP 2 -> P 3/5, R 1,   F = 0.78 / 1.18           = 0.6610
    # ties go to the lowest level: k = 51, threshold 51/255 = 0.2
    op = operating_point(_folder(tmp_path))
    assert op["level"] == 51 and op["threshold"] == pytest.approx(0.2) and op["rule"] == "max_f"
    assert op["precision"] == pytest.approx(0.75) and op["recall"] == pytest.approx(1.0)
    assert op["fmeasure"] == pytest.approx(0.975 / 1.225) and op["beta2"] == 0.3
    assert op["images"] == 2 and op["pixels"] == 10


def test_target_recall_rule(tmp_path: Path) -> None:
    pairs = _folder(tmp_path)
    op = operating_point(pairs, rule="target_recall", target_recall=0.6)
    # the highest level whose recall is still >= 0.6: recall 2/3 up to k = 150
    assert op["level"] == 150 and op["recall"] == pytest.approx(2 / 3) and op["precision"] == pytest.approx(2 / 3)
    assert op["target_met"] is True and op["target_recall"] == 0.6
    assert operating_point(pairs, rule="target_recall", target_recall=1.0)["level"] == 100


def test_threshold_levels_and_bad_input() -> None:
    assert threshold_level(0.2) == 51 and threshold_level(51 / 255) == 51 and threshold_level(150 / 255) == 150
    assert threshold_level(0.0) == 0 and threshold_level(1.0) == 255 and threshold_level(0.5) == 128
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(AclnetError, match="must be a number in"):
            threshold_level(bad)
    with pytest.raises(AclnetError, match="rule"):
        choose(LevelCounts(), rule="best")
    counts = LevelCounts()
    counts.add(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(AclnetError, match="no foreground pixel"):
        choose(counts)


def test_binary_scores_by_hand() -> None:
    gt = np.zeros((10, 10), np.uint8)
    gt[1:3, 1:3] = 255  # GT defect 1: 4 px, found
    gt[6:8, 6:8] = 255  # GT defect 2: 4 px, missed
    saliency = np.zeros((10, 10), np.uint8)
    saliency[1:3, 1:4] = 200  # 6 px predicted, 4 on GT defect 1
    saliency[8, 0] = 200  # 1 px, under min_area 2: dropped
    saliency[5, 0:2] = 180  # 2 px false defect
    scores = binary_scores([(saliency, gt)], threshold=0.5, min_area=2)
    # TP 4, FP 2 + 2, FN 4 -> IoU 4/12, Dice 8/16, P 4/8, R 4/8
    assert scores["op_IoU"] == pytest.approx(4 / 12) and scores["op_Dice"] == pytest.approx(0.5)
    assert scores["op_precision"] == pytest.approx(0.5) and scores["op_recall"] == pytest.approx(0.5)
    assert scores["op_detection_rate"] == 0.5 and scores["op_gt_defects"] == 2 and scores["op_false_defects"] == 1
    assert object_counts(np.zeros_like(gt), gt) == (2, 0, 0)
