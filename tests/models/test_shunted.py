"""Shunted Transformer backbone: timm registration, feature shapes and the local ImageNet weights loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

import aclnet_kd.models  # noqa: F401  (registers the Shunted variants with timm)
from aclnet_kd.errors import AclnetError
from aclnet_kd.models import build_model
from aclnet_kd.models.shunted import SHUNTED_VARIANTS, ShuntedTransformer, load_pretrained


@pytest.fixture(scope="module")
def shunted_t() -> ShuntedTransformer:
    torch.manual_seed(0)
    return timm.create_model("shunted_t", num_classes=0).eval()  # the backbone as ACLNet builds it


def _imagenet_state(model: ShuntedTransformer) -> dict[str, torch.Tensor]:
    """An official-style ImageNet checkpoint: the backbone's weights plus a 1000-class head."""
    state = {k: torch.randn_like(v) if v.is_floating_point() else v.clone() for k, v in model.state_dict().items()}
    state["head.weight"] = torch.randn(1000, 512)
    state["head.bias"] = torch.randn(1000)
    return state


@pytest.mark.parametrize("name", sorted(SHUNTED_VARIANTS))
def test_registered_with_timm(name: str) -> None:
    assert name in timm.list_models("shunted_*")
    with torch.device("meta"):  # shapes only, no init cost
        assert isinstance(timm.create_model(name), ShuntedTransformer)
        model = timm.create_model(name, features_only=True)
    assert [f["num_chs"] for f in model.feature_info] == [64, 128, 256, 512]
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]


def test_param_counts_match_the_paper_backbones() -> None:
    # Exact counts without the classifier; adding the 1000-class head (512*1000 + 1000) gives the published
    # 11.5M / 22.4M / 39.6M (Shunted-T's 11.55M is printed as 11.5M by the authors).
    head = 512 * 1000 + 1000
    expected = {"shunted_t": (11_040_576, 11.5e6), "shunted_s": (21_888_256, 22.4e6),
                "shunted_b": (39_101_376, 39.6e6)}
    for name, (exact, published) in expected.items():
        with torch.device("meta"):
            params = sum(p.numel() for p in timm.create_model(name, num_classes=0).parameters())
            with_head = sum(p.numel() for p in timm.create_model(name).parameters())  # timm's default: 1000 classes
        assert params == exact, name
        assert with_head == params + head, name
        assert abs(with_head - published) < 0.06e6, name


def test_features_are_nchw_at_strides_4_to_32(shunted_t: ShuntedTransformer) -> None:
    with torch.no_grad():
        feats = shunted_t.forward_intermediates(torch.randn(2, 3, 64, 96), intermediates_only=True)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6), (2, 512, 2, 3)]


def test_pretrained_round_trip_flat_and_wrapped(shunted_t: ShuntedTransformer, tmp_path: Path) -> None:
    fresh = ShuntedTransformer(depths=SHUNTED_VARIANTS["shunted_t"][0])
    for wrapper in (None, "model", "state_dict"):
        state = _imagenet_state(shunted_t)  # new random values each time, so every load is checked
        path = tmp_path / f"ckpt_{wrapper}.pth"
        torch.save(state if wrapper is None else {wrapper: state, "epoch": 300}, path)
        load_pretrained(fresh, path)
        loaded = fresh.state_dict()
        assert "head.weight" not in loaded
        assert all(torch.equal(loaded[k], state[k]) for k in loaded)


def test_build_model_loads_pretrained_backbone(shunted_t: ShuntedTransformer, tmp_path: Path) -> None:
    state = _imagenet_state(shunted_t)
    path = tmp_path / "ckpt_T.pth"
    torch.save(state, path)
    model = build_model("aclnet_s", pretrained=str(path))
    assert torch.equal(model.rgb.block3[2].attn.kv1.weight, state["block3.2.attn.kv1.weight"])


def test_mismatched_checkpoint_lists_missing_unexpected_and_misshaped(shunted_t: ShuntedTransformer,
                                                                     tmp_path: Path) -> None:
    state = _imagenet_state(shunted_t)
    del state["block2.1.attn.q.weight"]
    state["block9.0.extra.weight"] = torch.zeros(3)
    state["norm4.weight"] = torch.zeros(7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(AclnetError) as err:
        load_pretrained(shunted_t, path)  # refused before anything is copied
    message = str(err.value)
    assert str(path) in message
    assert "block2.1.attn.q.weight" in message and "block9.0.extra.weight" in message
    assert "norm4.weight: file (7,) vs model (512,)" in message


def test_wrong_variant_is_refused(tmp_path: Path) -> None:
    with torch.device("meta"):
        small = timm.create_model("shunted_t")
    path = tmp_path / "ckpt_T.pth"
    torch.save({"model": {k: torch.zeros(v.shape) for k, v in small.state_dict().items()}}, path)
    with pytest.raises(AclnetError, match="missing"):
        build_model("aclnet_t", pretrained=str(path))  # Shunted-B has blocks Shunted-T lacks


def test_non_state_dict_is_refused(shunted_t: ShuntedTransformer, tmp_path: Path) -> None:
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(AclnetError, match="not a state_dict"):
        load_pretrained(shunted_t, path)  # refused before anything is copied


class _Payload:
    """Pickles as a call to open(marker, 'w'): loading it unsafely would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused_and_never_run(shunted_t: ShuntedTransformer, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        torch.save({"model": {"patch_embed1.norm.weight": torch.ones(64)}, "payload": _Payload(marker)}, handle,
                   pickle_protocol=2)
    with pytest.raises(AclnetError, match="refused"):
        load_pretrained(shunted_t, path)  # refused before anything is copied
    assert not marker.exists()


def test_no_download_on_pretrained_true() -> None:
    with pytest.raises(AclnetError, match="nothing is downloaded"):
        timm.create_model("shunted_t", pretrained=True)


# ---- timm conventions: build_model_with_cfg, features_only, num_classes, pretrained from a local file ----
def test_features_only_with_out_indices() -> None:
    torch.manual_seed(0)
    model = timm.create_model("shunted_t", features_only=True, out_indices=(1, 2, 3)).eval()
    assert model.feature_info.channels() == [128, 256, 512]
    assert model.feature_info.reduction() == [8, 16, 32]
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = model(x)
    assert len(feats) == 3
    for feat, chs, red in zip(feats, model.feature_info.channels(), model.feature_info.reduction()):
        assert tuple(feat.shape) == (2, chs, 64 // red, 96 // red)
    # the same numbers as the full model's stage outputs, with the same weights
    full = timm.create_model("shunted_t", num_classes=0).eval()
    full.load_state_dict({k.removeprefix("model."): v for k, v in model.state_dict().items()})
    with torch.no_grad():
        ref = full.forward_intermediates(x, intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(feats, ref[1:]))


def test_features_only_prunes_unused_stages() -> None:
    with torch.device("meta"):
        model = timm.create_model("shunted_t", features_only=True, out_indices=(0, 1))
    names = {k.split(".")[1] for k in model.state_dict()}
    assert names == {"patch_embed1", "block1", "norm1", "patch_embed2", "block2", "norm2"}
    assert model.feature_info.channels() == [64, 128]


def test_classifier_forward_and_num_classes() -> None:
    torch.manual_seed(0)
    model = timm.create_model("shunted_t", num_classes=10).eval()
    assert tuple(model.get_classifier().weight.shape) == (10, 512)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        pooled = model.forward_head(features, pre_logits=True)
    assert tuple(features.shape) == (2, 512, 2, 2)
    assert tuple(logits.shape) == (2, 10) and tuple(pooled.shape) == (2, 512)
    torch.testing.assert_close(logits, model.get_classifier()(features.mean(dim=(2, 3))))


def _random_state(name: str, tmp_path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """A random model's state_dict (1000-class head included), saved as an official-style flat file."""
    torch.manual_seed(1)
    state = timm.create_model(name).state_dict()
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return state, path


def test_pretrained_local_file_round_trips(tmp_path: Path) -> None:
    state, path = _random_state("shunted_t", tmp_path)
    overlay = {"file": str(path)}
    torch.manual_seed(2)  # a different init, so equality below comes from the file
    full = timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay=overlay)
    assert full.state_dict().keys() == state.keys()
    assert all(torch.equal(full.state_dict()[k], v) for k, v in state.items())
    headless = timm.create_model("shunted_t", pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    assert all(torch.equal(v, state[k]) for k, v in headless.state_dict().items())
    assert "head.weight" not in headless.state_dict()
    feats = timm.create_model("shunted_t", pretrained=True, features_only=True, pretrained_cfg_overlay=overlay)
    assert all(torch.equal(v, state[k.removeprefix("model.")]) for k, v in feats.state_dict().items())


def test_pretrained_adapts_the_first_conv_to_in_chans(tmp_path: Path) -> None:
    state, path = _random_state("shunted_t", tmp_path)
    model = timm.create_model("shunted_t", pretrained=True, in_chans=1, pretrained_cfg_overlay={"file": str(path)})
    stem = model.patch_embed1.conv[0].weight
    assert tuple(stem.shape) == (64, 1, 7, 7)
    torch.testing.assert_close(stem, state["patch_embed1.conv.0.weight"].sum(dim=1, keepdim=True))


def test_pretrained_missing_or_mismatched_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_ckpt_T.pth"
    with pytest.raises(AclnetError, match="no_such_ckpt_T.pth: no such checkpoint file"):
        timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay={"file": str(missing)})
    state, path = _random_state("shunted_t", tmp_path)
    del state["block2.1.attn.q.weight"]
    torch.save(state, path)
    with pytest.raises(AclnetError) as err:
        timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    assert str(path) in str(err.value) and "missing: block2.1.attn.q.weight" in str(err.value)
    torch.save(torch.zeros(3), path)
    with pytest.raises(AclnetError, match="not a state_dict"):
        timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    marker = tmp_path / "code_ran"
    torch.save({"patch_embed1.norm.weight": torch.ones(64), "payload": _Payload(marker)}, path, pickle_protocol=2)
    with pytest.raises(AclnetError, match="refused"):
        timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    assert not marker.exists()
