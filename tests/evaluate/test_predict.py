"""aclnet predict: map sizes and protocols, plain folders, and unsafe checkpoints refused with no output."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import torch

from aclnet_kd.cli import main as aclnet
from aclnet_kd.evaluate.predict import logits_to_maps


def test_logits_to_maps_protocols() -> None:
    logits = torch.tensor([[[[-2.0, 0.0], [0.0, 2.0]]]])
    (sig,) = logits_to_maps(logits, [(2, 2)], "sigmoid")
    expected = np.round(255 / (1 + np.exp(-np.array([[-2.0, 0.0], [0.0, 2.0]])))).astype(np.uint8)
    np.testing.assert_array_equal(sig, expected)  # no per-image stretching
    (big,) = logits_to_maps(logits, [(4, 6)], "sigmoid")
    assert big.shape == (4, 6) and big.dtype == np.uint8
    (minmax,) = logits_to_maps(logits, [(4, 6)], "release_minmax")
    assert minmax.shape == (2, 2)  # kept at network size
    assert minmax.min() == 0 and minmax.max() == 255


def test_predict_prepared_split(tmp_path: Path, tiny_prepared: Path, student_checkpoint: Path) -> None:
    from aclnet_kd.data import open_prepared

    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(student_checkpoint), "--dataset", str(tiny_prepared),
                   "--split", "test", "--out", str(out), "--batch-size", "2"]) == 0
    prepared = open_prepared(tiny_prepared)
    assert sorted(p.stem for p in out.iterdir()) == sorted(prepared.ids("test"))
    for stem in prepared.ids("test"):
        saliency = cv2.imread(str(out / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert saliency.dtype == np.uint8 and saliency.shape == prepared.gt_original("test", stem).shape

    # the maps evaluate straight away against the prepared GT
    assert aclnet(["evaluate", "--pred", str(out), "--gt", str(tiny_prepared), "--split", "test",
                   "--out", str(tmp_path / "m.json"), "--workers", "1"]) == 0

    release = tmp_path / "release"
    assert aclnet(["predict", "--checkpoint", str(student_checkpoint), "--dataset", str(tiny_prepared),
                   "--split", "test", "--out", str(release), "--protocol", "release_minmax"]) == 0
    saliency = cv2.imread(str(next(release.iterdir())), cv2.IMREAD_UNCHANGED)
    assert saliency.shape == (64, 64) and saliency.min() == 0 and saliency.max() == 255


def test_predict_plain_folder_keeps_each_size(tmp_path: Path, student_checkpoint: Path) -> None:
    rgb_dir = tmp_path / "rgb"
    rgb_dir.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.jpg", (50, 70, 3)), ("b.png", (33, 41, 3))):
        cv2.imwrite(str(rgb_dir / name), rng.integers(0, 256, shape, dtype=np.uint8))
    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(student_checkpoint), "--rgb-dir", str(rgb_dir),
                   "--out", str(out), "--image-size", "64"]) == 0
    assert cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED).shape == (50, 70)
    assert cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED).shape == (33, 41)


class _Payload:
    """Unpickling this would call print(); weights_only=True must refuse it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_unsafe_checkpoint_is_refused_without_output(tmp_path: Path, tiny_prepared: Path, capsys) -> None:
    bad = tmp_path / "evil.pt"
    torch.save({"model_name": "aclnet_s", "state_dict": {}, "payload": _Payload()}, bad, pickle_protocol=2)
    out = tmp_path / "maps"
    code = aclnet(["predict", "--checkpoint", str(bad), "--dataset", str(tiny_prepared), "--split", "test",
                   "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert "evil.pt" in captured.err and "refused" in captured.err
    assert "code ran" not in captured.out
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_bad_arguments(tmp_path: Path, student_checkpoint: Path, tiny_prepared: Path, capsys) -> None:
    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(student_checkpoint), "--dataset", str(tiny_prepared),
                   "--split", "nope", "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err
    assert not out.exists()
    assert aclnet(["predict", "--checkpoint", str(student_checkpoint), "--out", str(out)]) == 2
    assert not out.exists()


def test_pickle_module_is_plain() -> None:
    # guard for the test above: the payload really is a code-carrying pickle
    assert b"print" in pickle.dumps(_Payload(), protocol=2)
