"""The synthetic rail data's depth carries defect information that RGB alone does not.

A simple rule per modality scores every rail-head pixel by how much darker (RGB) or deeper (depth) it is
than its neighbourhood; we compare how well each score separates defect pixels from the rest (ROC AUC),
and how well a tiny logistic model on both modalities does against one on RGB only.
"""

from __future__ import annotations

import cv2
import numpy as np

from aclnet_kd.data.synthetic_common import sample_rng
from aclnet_kd.data.synthetic_rail import render_rail

SIZE = 128


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    positives = label.sum()
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * (len(label) - positives)))


def _features(index: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb, depth, gt, _ = render_rail(sample_rng(0, split, index), SIZE)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rgb_score = cv2.GaussianBlur(grey, (0, 0), 6) / 255.0 - grey / 255.0       # darker than surroundings
    depth_score = cv2.GaussianBlur(depth, (0, 0), 6) - depth                    # deeper than surroundings
    head = cv2.erode((depth > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    # Keep every defect pixel and a fixed random tenth of the others (keeps the test fast).
    keep = head & ((gt > 127) | (np.random.default_rng(index).random(gt.shape) < 0.1))
    return rgb_score[keep], depth_score[keep], gt[keep] > 127


def _dataset(split: str, count: int):
    parts = [_features(i, split) for i in range(count)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 200) -> np.ndarray:
    x = np.c_[(x - x.mean(0)) / x.std(0), np.ones(len(x))]
    weights = np.zeros(x.shape[1])
    balance = np.where(y, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ weights))
        weights -= 0.5 * x.T @ ((p - y) * balance) / len(y)
    return weights


def test_depth_separates_defects_better_than_rgb():
    rgb_train, depth_train, y_train = _dataset("train", 20)
    rgb_test, depth_test, y_test = _dataset("test", 20)
    auc_rgb, auc_depth = _auc(rgb_test, y_test), _auc(depth_test, y_test)
    assert auc_depth > auc_rgb + 0.05, (auc_rgb, auc_depth)

    # Tiny logistic models: RGB-only vs RGB + depth features.
    def stack(*columns):
        return np.stack(columns, axis=1)
    models = {"rgb": (stack(rgb_train), stack(rgb_test)),
              "rgbd": (stack(rgb_train, depth_train), stack(rgb_test, depth_test))}
    aucs = {}
    for name, (train_x, test_x) in models.items():
        weights = _fit_logistic(train_x, y_train)
        mean, std = train_x.mean(0), train_x.std(0)
        aucs[name] = _auc(np.c_[(test_x - mean) / std, np.ones(len(test_x))] @ weights, y_test)
    assert aucs["rgbd"] > aucs["rgb"] + 0.05, aucs
    print(f"pixel AUC  rgb rule {auc_rgb:.3f}  depth rule {auc_depth:.3f}  "
          f"logistic rgb {aucs['rgb']:.3f}  rgb+depth {aucs['rgbd']:.3f}")
