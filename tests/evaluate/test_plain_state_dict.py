"""`aclnet predict --checkpoint FILE --arch teacher|student`: plain state_dicts in the release's format
(``torch.save(net.state_dict())``), built here from our models with random weights: with and without the
DataParallel ``module.`` prefix, with the backbone's unused ``rgb.head.*``, and the refusals (Shunted-B file
for a Shunted-T model, teacher file as student, student file as teacher, another prefix, truncated file)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from aclnet_kd.cli import main as aclnet
from aclnet_kd.errors import AclnetError
from aclnet_kd.models import build_model
from aclnet_kd.models.state_dict import ARCHS, clean_keys, load_state_dict_file, stage_depths
from aclnet_kd.workflow.plan import ROLES
from params_helper import write_params


def release_state(name: str = "aclnet_s", backbone: str = "shunted_t", seed: int = 0, head: bool = True,
                  prefix: str = "") -> dict[str, torch.Tensor]:
    """What the release's training scripts save: the state_dict, with the backbone's ImageNet head."""
    torch.manual_seed(seed)
    state = dict(build_model(name, backbone=backbone).state_dict())
    if head:
        state["rgb.head.weight"], state["rgb.head.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return {prefix + key: value for key, value in state.items()}


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    return write_params(tmp_path_factory.mktemp("params") / "params.yaml",
                        {"models": {"teacher": {"backbone": "shunted_t"}}, "train": {"image_size": 64}})


def test_archs_are_the_plan_roles() -> None:
    assert ARCHS == ROLES


@pytest.mark.parametrize("prefix", ["", "module."])
def test_release_format_loads_strictly_and_predicts(tmp_path: Path, tiny_prepared: Path, params_file: Path,
                                                     prefix: str, capsys) -> None:
    state = release_state(prefix=prefix)
    path = tmp_path / "ACLNet_S_KD.pth"
    torch.save(state, path)
    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(path), "--arch", "student", "--params", str(params_file),
                   "--dataset", str(tiny_prepared), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dropped the backbone's unused classifier (rgb.head.weight, rgb.head.bias)" in printed
    assert ("stripped the 'module.' prefix" in printed) == bool(prefix)
    assert "network input 64" in printed
    assert len(list(out.glob("*.png"))) == 3
    # the loaded weights are the file's, exactly
    model = build_model("aclnet_s", backbone="shunted_t")
    load_state_dict_file(path, model, "student")
    expected = release_state(head=False)
    assert all(torch.equal(value, expected[key]) for key, value in model.state_dict().items())


def test_plain_state_dict_without_arch_says_pass_arch(tmp_path: Path, tiny_prepared: Path, capsys) -> None:
    path = tmp_path / "rel.pth"
    torch.save(release_state(prefix="module."), path)
    assert aclnet(["predict", "--checkpoint", str(path), "--dataset", str(tiny_prepared), "--split", "test",
                   "--out", str(tmp_path / "maps")]) == 2
    err = capsys.readouterr().err
    assert "a plain state_dict" in err and "--arch teacher|student" in err and "'module.' prefix" in err
    assert not (tmp_path / "maps").exists()


def _refusal(tmp_path: Path, state, arch: str, params_file: Path, tiny_prepared: Path, capsys) -> str:
    path = tmp_path / "file.pth"
    torch.save(state, path)
    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(path), "--arch", arch, "--params", str(params_file),
                   "--dataset", str(tiny_prepared), "--split", "test", "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert str(path) in err
    return err


def test_shunted_b_file_for_a_shunted_t_model(tmp_path, params_file, tiny_prepared, capsys) -> None:
    err = _refusal(tmp_path, release_state(backbone="shunted_b"), "student", params_file, tiny_prepared, capsys)
    assert "751 unexpected: rgb.block1.1." in err and "wrong shape" in err
    assert "(3, 4, 24, 2) blocks per stage (shunted_b)" in err and "(1, 2, 4, 1) (shunted_t)" in err
    assert "set models.student.backbone to shunted_b" in err


def test_teacher_file_given_as_student(tmp_path, params_file, tiny_prepared, capsys) -> None:
    err = _refusal(tmp_path, release_state("aclnet_t"), "student", params_file, tiny_prepared, capsys)
    assert "it is an RGB-D teacher (ACLNet-T) file given as the student; use --arch teacher" in err
    assert "unexpected: depth." in err or "depth.block1.0" in err


def test_student_file_given_as_teacher(tmp_path, params_file, tiny_prepared, capsys) -> None:
    err = _refusal(tmp_path, release_state(), "teacher", params_file, tiny_prepared, capsys)
    assert "missing" in err and "student (ACLNet-S) file given as the teacher; use --arch student" in err


def test_other_prefix_is_named(tmp_path, params_file, tiny_prepared, capsys) -> None:
    err = _refusal(tmp_path, release_state(prefix="model."), "student", params_file, tiny_prepared, capsys)
    assert "every key starts with 'model.'" in err and "only the 'module.' prefix is stripped" in err


def test_truncated_file_is_refused_naming_it(tmp_path, params_file, tiny_prepared, capsys) -> None:
    whole = tmp_path / "whole.pth"
    torch.save(release_state(), whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    # io.safe_load's wording ("not a readable torch checkpoint", or "truncated" where it checks the zip)
    with pytest.raises(AclnetError, match=r"cut\.pth: .*(not a readable torch checkpoint|truncated)"):
        load_state_dict_file(cut, build_model("aclnet_s"), "student")
    out = tmp_path / "maps"
    assert aclnet(["predict", "--checkpoint", str(cut), "--arch", "student", "--params", str(params_file),
                   "--dataset", str(tiny_prepared), "--split", "test", "--out", str(out)]) == 2
    assert "cut.pth" in capsys.readouterr().err and not out.exists()


def test_teacher_needs_depth(tmp_path, params_file, capsys) -> None:
    """A teacher file loads as the teacher, and then asks for depth images when given a plain folder."""
    path = tmp_path / "ACLNet_T.pth"
    torch.save(release_state("aclnet_t", prefix="module."), path)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    cv2.imwrite(str(rgb / "a.png"), np.full((40, 56, 3), 90, np.uint8))
    assert aclnet(["predict", "--checkpoint", str(path), "--arch", "teacher", "--params", str(params_file),
                   "--rgb-dir", str(rgb), "--out", str(tmp_path / "maps")]) == 2
    assert "RGB-D teacher: pass --depth-dir" in capsys.readouterr().err


def test_clean_keys_and_depths() -> None:
    state = {"module.rgb.head.weight": torch.zeros(1), "module.rgb.block1.0.x": torch.zeros(1),
             "module.rgb.block2.0.x": torch.zeros(1), "module.rgb.block2.1.x": torch.zeros(1)}
    cleaned, done = clean_keys(state, wanted={"rgb.block1.0.x"})
    assert sorted(cleaned) == ["rgb.block1.0.x", "rgb.block2.0.x", "rgb.block2.1.x"] and len(done) == 2
    assert stage_depths(cleaned) == (1, 2)
    # a head the model has is kept; a partial prefix is not stripped
    assert "rgb.head.weight" in clean_keys({"rgb.head.weight": torch.zeros(1)}, {"rgb.head.weight"})[0]
    assert "module.a" in clean_keys({"module.a": torch.zeros(1), "b": torch.zeros(1)}, set())[0]
