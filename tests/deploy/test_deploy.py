"""aclnet export / aclnet predict --onnx on tiny models: the ONNX maps equal PyTorch's (1e-4 max abs) on the
test split at two sizes, the ONNX path imports no torch and writes the checkpoint path's maps, and failures
leave no partial .onnx behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from aclnet_kd.checkpoint import FORMAT, atomic_save
from aclnet_kd.cli import main as aclnet
from aclnet_kd.deploy.export import SaliencyGraph, dataset_batches
from aclnet_kd.models import build_model, load_model_checkpoint

TINY_BACKBONE = "test_convnext"  # timm's test model: the export path is the same, ~20 s instead of minutes


def _tiny_checkpoint(path: Path, name: str) -> Path:
    torch.manual_seed(0)
    model = build_model(name, backbone=TINY_BACKBONE)
    atomic_save({"format": FORMAT, "model_name": name, "model_cfg": {"backbone": TINY_BACKBONE},
                 "state_dict": model.state_dict(), "meta": {"image_size": 64, "role": name, "seed": 0}}, path)
    return path


@pytest.fixture(scope="module")
def exported_student(tmp_path_factory, tiny_prepared: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    ckpt = _tiny_checkpoint(root / "best.pt", "aclnet_s")
    onnx_path = root / "student.onnx"
    assert aclnet(["export", "--checkpoint", str(ckpt), "--out", str(onnx_path),
                   "--verify-dataset", str(tiny_prepared), "--verify-split", "test"]) == 0
    return ckpt, onnx_path


def test_export_writes_model_and_sidecar(exported_student) -> None:
    import hashlib

    ckpt, onnx_path = exported_student
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    assert info["input_size"] == 64 and [i["name"] for i in info["inputs"]] == ["rgb"]
    assert info["mean"] == [0.485, 0.456, 0.406] and info["std"] == [0.229, 0.224, 0.225]
    assert info["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert info["record"] == {"image_size": 64, "role": "aclnet_s", "seed": 0}
    assert set(info["verification"]["max_abs_by_size"]) == {"64", "128"}
    assert info["provenance"]["versions"]["onnxruntime"] == ort.__version__ and info["provenance"]["cpu"]
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["best.pt", "student.json", "student.onnx"]


def test_onnxruntime_equals_pytorch_on_test_split(exported_student, tiny_prepared: Path) -> None:
    """Independently of the export's own check: maps in [0, 1], equal within 1e-4 at 64 and 128, any batch."""
    ckpt, onnx_path = exported_student
    graph = SaliencyGraph(load_model_checkpoint(ckpt)[0])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for size, batches in dataset_batches(tiny_prepared, "test", False, [64, 128], limit=3).items():
        (rgb,) = np.concatenate([b[0] for b in batches])[None]
        for batch in (rgb[:1], rgb):  # dynamic batch: 1 and 3
            got = session.run(["saliency"], {"rgb": batch})[0]
            with torch.no_grad():
                expected = graph(torch.from_numpy(batch)).numpy()
            assert got.shape == (len(batch), 1, size, size)
            assert np.isfinite(got).all() and got.min() >= 0 and got.max() <= 1
            assert np.abs(got - expected).max() <= 1e-4
            assert expected.std() > 0  # a constant map would make the comparison empty


def _rgb_folder(root: Path) -> Path:
    rgb_dir = root / "rgb"
    rgb_dir.mkdir()
    rng = np.random.default_rng(1)
    for name, shape in (("a.jpg", (50, 70, 3)), ("b.png", (33, 41, 3)), ("c.bmp", (64, 64, 3))):
        cv2.imwrite(str(rgb_dir / name), rng.integers(0, 256, shape, dtype=np.uint8))
    return rgb_dir


def test_predict_onnx_without_torch_matches_checkpoint_path(exported_student, tmp_path: Path) -> None:
    ckpt, onnx_path = exported_student
    rgb_dir = _rgb_folder(tmp_path)
    onnx_out, torch_out = tmp_path / "onnx_maps", tmp_path / "torch_maps"
    script = ("import sys; from aclnet_kd.cli import main; rc = main(sys.argv[1:]); "
              "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", script, "predict", "--onnx", str(onnx_path), "--rgb-dir",
                          str(rgb_dir), "--out", str(onnx_out), "--batch-size", "2"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(torch_out),
                   "--device", "cpu"]) == 0
    assert sorted(p.name for p in onnx_out.iterdir()) == ["a.png", "b.png", "c.png"]
    for name, shape in (("a.png", (50, 70)), ("b.png", (33, 41)), ("c.png", (64, 64))):
        got = cv2.imread(str(onnx_out / name), cv2.IMREAD_UNCHANGED)
        want = cv2.imread(str(torch_out / name), cv2.IMREAD_UNCHANGED)
        assert got.shape == want.shape == shape and got.dtype == np.uint8
        # float round-off may move a value sitting on .5 by one grey level; nothing more
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_predict_onnx_errors(exported_student, tmp_path: Path, capsys) -> None:
    _, onnx_path = exported_student
    rgb_dir = _rgb_folder(tmp_path)
    out = tmp_path / "maps"
    assert aclnet(["predict", "--onnx", str(tmp_path / "nope.onnx"), "--rgb-dir", str(rgb_dir), "--out", str(out)]) == 2
    assert "no such ONNX model file" in capsys.readouterr().err
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(onnx_path.read_bytes())
    assert aclnet(["predict", "--onnx", str(lonely), "--rgb-dir", str(rgb_dir), "--out", str(out)]) == 2
    assert "lonely.json: missing" in capsys.readouterr().err
    assert aclnet(["predict", "--onnx", str(onnx_path), "--rgb-dir", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no such RGB folder" in capsys.readouterr().err
    (rgb_dir / "broken.png").write_bytes(b"not an image")
    assert aclnet(["predict", "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir), "--out", str(out)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not out.exists()  # no partial output folder


def test_export_failures_leave_no_onnx(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert aclnet(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "bad.pt" in capsys.readouterr().err

    def broken_export(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::fancy")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    ckpt = _tiny_checkpoint(tmp_path / "best.pt", "aclnet_s")
    assert aclnet(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "does not export to ONNX (RuntimeError: unsupported operator aten::fancy)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt", "best.pt"]  # no .onnx, .json or temp file


def test_teacher_exports_with_two_inputs(tmp_path: Path) -> None:
    ckpt = _tiny_checkpoint(tmp_path / "teacher.pt", "aclnet_t")
    onnx_path = tmp_path / "teacher.onnx"
    assert aclnet(["export", "--checkpoint", str(ckpt), "--out", str(onnx_path)]) == 0
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    assert [i["name"] for i in info["inputs"]] == ["rgb", "depth"] and info["is_rgbd"]
    assert max(info["verification"]["max_abs_by_size"].values()) <= 1e-4
    rgb_dir = _rgb_folder(tmp_path)
    out = tmp_path / "maps"
    assert aclnet(["predict", "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir), "--out", str(out)]) == 2
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    for stem, shape in (("a", (50, 70)), ("b", (33, 41)), ("c", (64, 64))):
        cv2.imwrite(str(depth_dir / f"{stem}.png"), np.full(shape, 120, np.uint8))
    assert aclnet(["predict", "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir), "--depth-dir", str(depth_dir),
                   "--out", str(out)]) == 0
    assert cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED).shape == (33, 41)


# ---------------------------------------------------------------------------------------------------
# --binary: masks and defects.csv, the same through both paths
# ---------------------------------------------------------------------------------------------------
TORCH_FREE = ("import sys; from aclnet_kd.cli import main; rc = main(sys.argv[1:]); "
              "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")


def _torch_free_aclnet(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-c", TORCH_FREE, *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def exported_with_op(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny student whose meta records an operating point at the median grey level of its maps of the
    RGB folder (so the masks have defects and background), exported to ONNX."""
    root = tmp_path_factory.mktemp("op")
    rgb_dir = _rgb_folder(root)
    ckpt = _tiny_checkpoint(root / "best.pt", "aclnet_s")
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(root / "grey"),
                   "--device", "cpu"]) == 0
    median = int(np.median(cv2.imread(str(root / "grey" / "a.png"), cv2.IMREAD_UNCHANGED)))
    saved = torch.load(ckpt, weights_only=True)
    saved["meta"]["operating_point"] = {"threshold": (median + 0.5) / 255, "rule": "max_f", "split": "val",
                                        "min_area": 3, "precision": 0.5, "recall": 0.5}
    atomic_save(saved, ckpt)
    onnx_path = root / "student.onnx"
    assert aclnet(["export", "--checkpoint", str(ckpt), "--out", str(onnx_path)]) == 0
    return ckpt, onnx_path, rgb_dir


def test_sidecar_records_the_operating_point(exported_with_op) -> None:
    ckpt, onnx_path, _ = exported_with_op
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    assert info["operating_point"] == torch.load(ckpt, weights_only=True)["meta"]["operating_point"]


def test_binary_same_masks_and_defects_through_both_paths(exported_with_op, tmp_path: Path) -> None:
    ckpt, onnx_path, rgb_dir = exported_with_op
    outs = {name: tmp_path / name for name in ("torch", "openvino", "onnxruntime")}
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(outs["torch"]),
                   "--binary", "--device", "cpu", "--threads", "1"]) == 0
    for runtime in ("openvino", "onnxruntime"):
        run = _torch_free_aclnet("predict", "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir), "--out",
                                 str(outs[runtime]), "--binary", "--runtime", runtime, "--threads", "1")
        assert run.returncode == 0, run.stderr
        assert f"{runtime}) to" in run.stdout and "from the operating point of" in run.stdout
    reference = (outs["torch"] / "defects.csv").read_text()
    rows = reference.splitlines()
    assert rows[0] == "image,defects,defect,area,x,y,w,h,score_max,score_mean" and len(rows) > 4
    for stem, shape in (("a", (50, 70)), ("b", (33, 41)), ("c", (64, 64))):
        want = cv2.imread(str(outs["torch"] / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert want.shape == shape and set(np.unique(want)) == {0, 255}  # binary, at the original size
        for runtime in ("openvino", "onnxruntime"):
            assert np.array_equal(cv2.imread(str(outs[runtime] / f"{stem}.png"), cv2.IMREAD_UNCHANGED), want)
    for runtime in ("openvino", "onnxruntime"):
        assert (outs[runtime] / "defects.csv").read_text() == reference
    areas = [int(row.split(",")[3]) for row in rows[1:] if row.split(",")[1] != "0"]
    assert min(areas) >= 3  # the recorded min_area


def test_binary_bad_input_writes_nothing(exported_student, exported_with_op, tmp_path: Path, capsys) -> None:
    ckpt_no_op, onnx_no_op = exported_student
    ckpt, onnx_path, rgb_dir = exported_with_op
    out = tmp_path / "masks"
    for model in (["--checkpoint", str(ckpt_no_op)], ["--onnx", str(onnx_no_op)]):
        assert aclnet(["predict", *model, "--rgb-dir", str(rgb_dir), "--out", str(out), "--binary"]) == 2
        assert "records no operating point" in capsys.readouterr().err
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(out), "--binary",
                   "--threshold", "1.5"]) == 2
    assert "--threshold 1.5: must be in [0, 1]" in capsys.readouterr().err
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(out),
                   "--threshold", "0.5"]) == 2
    assert "add --binary" in capsys.readouterr().err
    assert aclnet(["predict", "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir), "--out", str(out), "--binary",
                   "--protocol", "release_minmax"]) == 2
    assert "no fixed threshold" in capsys.readouterr().err
    broken = tmp_path / "rgb"
    broken.mkdir()
    for path in rgb_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "z_broken.png").write_bytes(b"not an image")  # fails after the good images were written
    for model in (["--checkpoint", str(ckpt)], ["--onnx", str(onnx_path)]):
        assert aclnet(["predict", *model, "--rgb-dir", str(broken), "--out", str(out), "--binary"]) == 2
        assert "z_broken.png" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["rgb"]  # nothing partial


def test_predict_one_parser(exported_with_op, tmp_path: Path, capsys) -> None:
    ckpt, onnx_path, rgb_dir = exported_with_op
    with pytest.raises(SystemExit):  # exactly one model: both is an argparse error
        aclnet(["predict", "--checkpoint", str(ckpt), "--onnx", str(onnx_path), "--rgb-dir", str(rgb_dir),
                "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        aclnet(["predict", "--rgb-dir", str(rgb_dir), "--out", str(tmp_path / "x")])
    assert "one of the arguments --checkpoint --onnx is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        aclnet(["predict", "--help"])
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--onnx", "--threads", "--runtime", "--binary", "--threshold", "--min-area",
                   "--dataset", "--device", "--batch-size", "--image-size", "--protocol", "--depth-dir"):
        assert option in text
    assert aclnet(["predict", "--checkpoint", str(ckpt), "--rgb-dir", str(rgb_dir), "--out", str(tmp_path / "x"),
                   "--runtime", "openvino"]) == 2
    assert "use it with --onnx" in capsys.readouterr().err


def test_openvino_compiles_once_per_shape_and_matches_onnxruntime(exported_with_op) -> None:
    from aclnet_kd.deploy.runtimes import OnnxRuntimeModel, OpenVinoModel, default_runtime

    _, onnx_path, _ = exported_with_op
    assert default_runtime() == "openvino"  # installed with the package: the default
    openvino, ort_model = OpenVinoModel(onnx_path, threads=1), OnnxRuntimeModel(onnx_path, threads=1)
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 64, 64), (2, 3, 96, 128), (1, 3, 64, 64)):
        feeds = {"rgb": rng.standard_normal(shape).astype(np.float32)}
        got = openvino(feeds)
        assert got.shape == (shape[0], 1, *shape[2:])
        assert np.abs(got - ort_model(feeds)).max() <= 1e-4  # f32 inference precision, not bf16
    assert len(openvino.compiled) == 2  # the third call reused the first shape's compiled model
