"""ACLNet-T / ACLNet-S: shapes, release state_dict compatibility, the RGB-only student, backbone swaps."""

from __future__ import annotations

import inspect

import pytest
import torch

from aclnet_kd.errors import AclnetError
from aclnet_kd.models import ACLNetOutput, ACLNetStudent, build_model

HEADS = ("rgb.head.weight", "rgb.head.bias", "depth.head.weight", "depth.head.bias")


def _forward(model: torch.nn.Module, batch: int, height: int, width: int, **kwargs):  # noqa: ANN003, ANN202
    rgb = torch.randn(batch, 3, height, width)
    if model.is_rgbd:
        return model(rgb, torch.rand(batch, 1, height, width), **kwargs)
    return model(rgb, **kwargs)


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_eval_logits_shape_at_256_and_320(which: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    for size in (256, 320):
        with torch.no_grad():
            logits = _forward(model, 1, size, size)
        assert logits.shape == (1, 1, size, size)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_return_all_structure(which: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    with torch.no_grad():
        out = _forward(model, 2, 64, 96, return_all=True)
        eval_logits = _forward(model, 2, 64, 96)  # different random input: only shapes compared here
    assert isinstance(out, ACLNetOutput)
    assert out.logits is out.side_logits[0] and eval_logits.shape == out.logits.shape
    assert [tuple(t.shape) for t in out.side_logits] == [(2, 1, 64, 96)] * 4
    expected = [(2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6), (2, 512, 2, 3)]
    assert [tuple(t.shape) for t in out.decoder_feats] == expected
    assert [tuple(t.shape) for t in out.stage_feats] == expected


def test_eval_output_is_head1_of_the_full_output(student: torch.nn.Module) -> None:
    rgb = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(student(rgb), student(rgb, return_all=True).logits)


def test_train_mode_returns_everything_and_trains(student: torch.nn.Module) -> None:
    model = build_model("aclnet_s").train()
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, ACLNetOutput)
    sum(s.mean() for s in out.side_logits).backward()
    assert model.rgb.patch_embed1.conv[0].weight.grad is not None
    assert model.wf_1.alph.grad is not None and model.Head4.conv[1].weight.grad is not None


def test_param_counts(teacher: torch.nn.Module, student: torch.nn.Module) -> None:
    # Without the backbones' unused ImageNet classifiers: the paper's 79.1M and 11.9M.
    assert sum(p.numel() for p in teacher.parameters()) == 79_074_888
    assert sum(p.numel() for p in student.parameters()) == 11_912_712


@pytest.mark.parametrize("name", ["aclnet_t", "aclnet_s"])
def test_state_dict_matches_release(name: str, released: dict, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue("teacher" if name == "aclnet_t" else "student")
    release = released[name]["state_dict"]
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: v for k, v in release.items() if k not in HEADS}
    assert list(ours) == [k for k in release if k not in HEADS]  # same order, too
    assert sum(p.numel() for p in model.parameters()) == released[name]["params_excluding_unused_classifier_heads"]


@pytest.mark.parametrize("name", ["aclnet_t", "aclnet_s"])
def test_release_format_checkpoint_loads_strict(name: str, released: dict, request: pytest.FixtureRequest) -> None:
    """A state_dict with the authors' full key set (classifier heads included) loads with strict=True once
    models.state_dict.clean_keys has dropped the unused heads (no hook inside the model forgives keys)."""
    from aclnet_kd.models.state_dict import clean_keys

    model = request.getfixturevalue("teacher" if name == "aclnet_t" else "student")
    state = dict(model.state_dict())  # the model's own values, so loading leaves the shared fixture unchanged
    for key in HEADS:
        if key in released[name]["state_dict"]:
            state[key] = torch.zeros(released[name]["state_dict"][key])
    assert set(state) == set(released[name]["state_dict"])
    with pytest.raises(RuntimeError, match="head"):
        model.load_state_dict(state, strict=True)  # the heads are the release's, not the model's
    cleaned, _ = clean_keys(state, set(model.state_dict()))
    model.load_state_dict(cleaned, strict=True)
    cleaned["rgb.block1.0.attn.q.bias_typo"] = torch.zeros(64)
    with pytest.raises(RuntimeError, match="bias_typo"):
        model.load_state_dict(cleaned, strict=True)


def test_student_never_reads_depth(student: torch.nn.Module) -> None:
    assert student.is_rgbd is False and isinstance(student, ACLNetStudent)
    assert not hasattr(student, "depth")
    assert not any("depth" in name for name, _ in student.named_modules())
    assert list(inspect.signature(student.forward).parameters) == ["rgb", "return_all"]
    rgb, depth = torch.randn(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    with pytest.raises(TypeError):
        student(rgb, depth)
    with pytest.raises(TypeError):
        student(rgb, depth=depth)


def test_teacher_uses_depth(teacher: torch.nn.Module) -> None:
    rgb = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = teacher(rgb, torch.zeros(1, 1, 64, 64), return_all=True)
        b = teacher(rgb, torch.ones(1, 1, 64, 64), return_all=True)
    assert not torch.allclose(a.stage_feats[0], b.stage_feats[0])
    with pytest.raises(TypeError):
        teacher(rgb)


def test_channels_last_and_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = build_model("aclnet_s").eval()
    rgb = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(rgb)
        model = model.to(memory_format=torch.channels_last)
        fast = model(rgb.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(rgb.contiguous(memory_format=torch.channels_last))
    assert out.logits.dtype == torch.bfloat16
    assert all(t.dtype == torch.bfloat16 for t in out.decoder_feats)
    sum(s.float().mean() for s in out.side_logits).backward()
    assert torch.isfinite(model.rgb.block3[0].attn.kv2.weight.grad).all()


@pytest.mark.parametrize("backbone,adapted", [("resnet18", False), ("pvt_v2_b0", True)])
def test_backbone_swap_with_timm(backbone: str, adapted: bool) -> None:
    torch.manual_seed(0)
    student = build_model("aclnet_s", backbone=backbone).eval()
    has_adapter = any(isinstance(m, torch.nn.Conv2d) for m in student.rgb.adapt)
    assert has_adapter == adapted  # resnet18 already has 64/128/256/512 channels
    with torch.no_grad():
        out = student(torch.randn(1, 3, 64, 64), return_all=True)
    assert [t.shape[1] for t in out.stage_feats] == [64, 128, 256, 512]
    assert out.logits.shape == (1, 1, 64, 64)
    teacher = build_model("aclnet_t", backbone=backbone).eval()
    with torch.no_grad():
        assert teacher(torch.randn(1, 3, 64, 64), torch.rand(1, 1, 64, 64)).shape == (1, 1, 64, 64)


def test_build_model_rejects_bad_input() -> None:
    with pytest.raises(AclnetError, match="aclnet_x"):
        build_model("aclnet_x")
    with pytest.raises(AclnetError, match="pretrainned"):
        build_model("aclnet_s", pretrainned="x.pth")
    with pytest.raises(AclnetError, match="no_such_net"):
        build_model("aclnet_s", backbone="no_such_net")
    with pytest.raises(AclnetError, match="no such checkpoint"):
        build_model("aclnet_s", pretrained="/nonexistent/ckpt_T.pth")


def test_timm_backbone_loads_local_imagenet_weights(tmp_path) -> None:  # noqa: ANN001
    import timm

    full = timm.create_model("resnet18")
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in full.state_dict().items()}
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": state}, path)
    model = build_model("aclnet_s", backbone="resnet18", pretrained=str(path))
    assert torch.equal(model.rgb.body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    del state["layer1.0.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(AclnetError, match="missing: layer1.0.conv1.weight"):
        build_model("aclnet_s", backbone="resnet18", pretrained=str(path))
