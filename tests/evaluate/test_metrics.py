"""Metric values on hand-built maps, against values derived by hand from the metrics' definitions.

Conventions of PySODMetrics (MATLAB-compatible) that the derivations follow:
* E-measure divides the summed enhanced-alignment matrix by (N - 1), N = pixel count;
* S-measure splits the image at the GT centroid rounded, plus one (MATLAB's 1-based ``1:X`` ranges);
* F-measure with beta^2 = 0.3; the curves hold thresholds 0..255 on the min-max normalised map.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aclnet_kd.evaluate.metrics import METRIC_KEYS, SODMetrics

H = W = 48
R0, R1, C0, C1 = 8, 25, 8, 25  # a 17 x 17 foreground block, centroid (16, 16) exactly
N = H * W
G = (R1 - R0) * (C1 - C0)
P = G / N  # foreground fraction


def block_gt() -> np.ndarray:
    gt = np.zeros((H, W), np.uint8)
    gt[R0:R1, C0:C1] = 255
    return gt


def f_beta(precision: float, recall: float, beta2: float = 0.3) -> float:
    return 0.0 if precision == 0 and recall == 0 else (1 + beta2) * precision * recall / (beta2 * precision + recall)


def enhanced(parts: list[tuple[int, float, float]]) -> float:
    """E-measure from (pixel count, demeaned pred value, demeaned gt value) parts."""
    total = 0.0
    for count, a, b in parts:
        align = 2 * a * b / (a * a + b * b) if (a or b) else 0.0
        total += count * (align + 1) ** 2 / 4
    return total / (N - 1)


def score(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    metrics = SODMetrics()
    metrics.step(pred, gt)
    return metrics.results()


def test_perfect_map() -> None:
    gt = block_gt()
    r = score(gt.copy(), gt)
    assert r["Sm"] == pytest.approx(1.0, abs=1e-9)
    assert r["MAE"] == 0.0
    assert r["wF"] == pytest.approx(1.0, abs=1e-9)
    # Thresholds 1..255 reproduce the GT exactly (F = 1); threshold 0 marks everything foreground.
    f_at_zero = f_beta(P, 1.0)
    assert r["maxF"] == pytest.approx(1.0)
    assert r["meanF"] == pytest.approx((255 * 1.0 + f_at_zero) / 256)
    assert r["adpF"] == pytest.approx(1.0)
    # Perfect alignment: every pixel contributes 1, so E = N / (N - 1) at thresholds 1..255.
    e_at_zero = enhanced([(G, 0.0, 1 - P), (N - G, 0.0, -P)])  # all-foreground prediction
    assert r["maxE"] == pytest.approx(N / (N - 1))
    assert r["meanE"] == pytest.approx((255 * N / (N - 1) + e_at_zero) / 256)
    assert r["adpE"] == pytest.approx(N / (N - 1))


def test_empty_map() -> None:
    gt = block_gt()
    r = score(np.zeros_like(gt), gt)
    # Object score: foreground term 0, background term 1 weighted by (1 - P); region: the centroid split
    # leaves foreground in all four quadrants, where a constant zero map has SSIM 0.
    assert r["Sm"] == pytest.approx(0.5 * (1 - P))
    assert r["MAE"] == pytest.approx(P)
    f_at_zero = f_beta(P, 1.0)  # only threshold 0 marks anything
    assert r["maxF"] == pytest.approx(f_at_zero)
    assert r["meanF"] == pytest.approx(f_at_zero / 256)
    assert r["adpF"] == pytest.approx(f_at_zero)  # adaptive threshold 2 * mean = 0
    # A constant prediction has zero demeaned value everywhere: alignment 0, each pixel 1/4.
    assert r["maxE"] == pytest.approx(N / 4 / (N - 1))
    assert r["meanE"] == pytest.approx(N / 4 / (N - 1))
    assert r["wF"] == 0.0


def test_half_right_map() -> None:
    gt = block_gt()
    pred = np.zeros_like(gt)
    cx = 16 + 1  # centroid column + 1: the S-measure split column
    pred[R0:R1, C0:cx] = 255  # the block's left part (9 of 17 columns), nothing else
    tp = (R1 - R0) * (cx - C0)
    r = score(pred, gt)

    recall = tp / G
    assert r["MAE"] == pytest.approx((G - tp) / N)
    assert r["maxF"] == pytest.approx(f_beta(1.0, recall))
    assert r["adpF"] == pytest.approx(f_beta(1.0, recall))
    q = tp / N  # predicted foreground fraction
    e_mid = enhanced([(tp, 1 - q, 1 - P), (G - tp, -q, 1 - P), (N - G, -q, -P)])
    assert r["maxE"] == pytest.approx(max(e_mid, enhanced([(G, 0.0, 1 - P), (N - G, 0.0, -P)])))
    assert r["adpE"] == pytest.approx(e_mid)

    # S-measure: object part from the foreground's mean/std; region part = weight of the two left
    # quadrants (pred == gt there, SSIM 1), the right ones have foreground but a zero map (SSIM 0).
    fg = np.r_[np.ones(tp), np.zeros(G - tp)]
    eps = np.spacing(1)
    s_fg = 2 * fg.mean() / (fg.mean() ** 2 + 1 + fg.std(ddof=1) + eps)
    s_bg = 2 * 1.0 / (1 + 1 + 0 + eps)
    object_score = P * s_fg + (1 - P) * s_bg
    region_score = cx / W
    assert r["Sm"] == pytest.approx(0.5 * object_score + 0.5 * region_score, abs=1e-9)
    assert 0 < r["wF"] < 1


def test_merge_equals_serial() -> None:
    rng = np.random.default_rng(0)
    maps = [(rng.integers(0, 256, (20, 24), dtype=np.uint8), (rng.random((20, 24)) > 0.6).astype(np.uint8) * 255)
            for _ in range(7)]
    serial = SODMetrics()
    for pred, gt in maps:
        serial.step(pred, gt)
    first, second = SODMetrics(), SODMetrics()
    for pred, gt in maps[:3]:
        first.step(pred, gt)
    for pred, gt in maps[3:]:
        second.step(pred, gt)
    merged = first.merge(second)
    assert merged.num_images == 7
    assert merged.results() == serial.results()
    for key, values in serial.per_image().items():
        np.testing.assert_array_equal(merged.per_image()[key], values)
    for key, values in serial.curves().items():
        np.testing.assert_array_equal(merged.curves()[key], values)


def test_curves_are_ascending_thresholds() -> None:
    gt = block_gt()
    metrics = SODMetrics()
    metrics.step(gt.copy(), gt)
    curves = metrics.curves()
    assert list(curves["threshold"][:2]) == [0, 1] and len(curves["threshold"]) == 256
    assert curves["recall"][0] == pytest.approx(1.0) and curves["precision"][0] == pytest.approx(P)
    assert set(metrics.results()) == set(METRIC_KEYS)
    assert all(math.isfinite(v) for v in metrics.results().values())


def test_bad_arrays_are_rejected() -> None:
    metrics = SODMetrics()
    with pytest.raises(ValueError):
        metrics.step(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError):
        metrics.step(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))


def test_dataset_numbers_equal_long_lived_pysodmetrics_evaluators() -> None:
    """Per-image records kept by us, averaged by us, give exactly what one set of upstream evaluators gives."""
    import py_sod_metrics as psm

    rng = np.random.default_rng(1)
    maps = [(rng.integers(0, 256, (18, 22), dtype=np.uint8), (rng.random((18, 22)) > 0.5).astype(np.uint8) * 255)
            for _ in range(5)]
    ours = SODMetrics()
    sm, mae, em, wfm = psm.Smeasure(alpha=0.5), psm.MAE(), psm.Emeasure(), psm.WeightedFmeasure()
    fm = psm.FmeasureV2(metric_handlers={
        "fm": psm.FmeasureHandler(with_dynamic=True, with_adaptive=True, beta=0.3),
        "pre": psm.PrecisionHandler(with_dynamic=True, with_adaptive=False),
        "rec": psm.RecallHandler(with_dynamic=True, with_adaptive=False),
    })
    for pred, gt in maps:
        ours.step(pred, gt)
        for evaluator in (sm, mae, em, wfm, fm):
            evaluator.step(pred=pred, gt=gt)
    r, f, e = ours.results(), fm.get_results(), em.get_results()["em"]
    assert r["Sm"] == sm.get_results()["sm"] and r["MAE"] == mae.get_results()["mae"]
    assert r["wF"] == wfm.get_results()["wfm"]
    assert r["maxF"] == f["fm"]["dynamic"].max() and r["meanF"] == f["fm"]["dynamic"].mean()
    assert r["adpF"] == f["fm"]["adaptive"] and r["adpE"] == e["adp"]
    assert r["maxE"] == e["curve"].max() and r["meanE"] == e["curve"].mean()
    curves = ours.curves()
    np.testing.assert_array_equal(curves["precision"], f["pre"]["dynamic"][::-1])
    np.testing.assert_array_equal(curves["recall"], f["rec"]["dynamic"][::-1])
    np.testing.assert_array_equal(curves["emeasure"], e["curve"][::-1])
    per_image = ours.per_image()
    assert len(per_image["Sm"]) == 5
    assert per_image["MAE"].mean() == pytest.approx(r["MAE"])
