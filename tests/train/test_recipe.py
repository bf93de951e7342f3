"""Recipe resolution: merge order, key checks that name the key (the params schema, checked once when the
params are loaded), --kd-weights, the release's lr schedule."""

from __future__ import annotations

import pytest

from aclnet_kd.config import deep_merge, validate_params
from aclnet_kd.errors import AclnetError
from aclnet_kd.train.recipe import parse_kd_weights, resolve_recipe


def test_merge_order_train_role_track(params):
    params = deep_merge(params, {
        "train": {"epochs": 3, "student": {"epochs": 5, "lr": 2.0e-4}},
    })
    params["tracks"]["sod"]["train"] = {"image_size": 96, "student": {"batch_size": 2}}   # replaces the demo's
    teacher = resolve_recipe(params, "teacher")
    assert (teacher.epochs, teacher.image_size, teacher.batch_size) == (3, 64, 4)
    student = resolve_recipe(params, "student", track="sod", seed=7)
    assert (student.epochs, student.lr, student.image_size, student.batch_size, student.seed) == (5, 2e-4, 96, 2, 7)
    assert student.model_name == "aclnet_s" and student.model_cfg["backbone"] == "test_convnext"
    params["tracks"]["sod"]["train"]["epochs"] = 20   # a track's key beats train.<role>'s
    assert resolve_recipe(params, "student", track="sod").epochs == 20


@pytest.mark.parametrize("edit, key", [
    ({"train": {"lr_rate": 1.0}}, "train.lr_rate"),
    ({"train": {"student": {"epoch": 3}}}, "train.student.epoch"),
    ({"tracks": {"rail": {"train": {"imgsize": 3}}}}, "tracks.rail.train.imgsize"),
    ({"train": {"selection": "best_test"}}, "train.selection"),
    ({"train": {"image_size": 100}}, "train.image_size"),
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"kd": {"weights": {"kl": 1.0}}}, "kd.weights.kl"),
    ({"kd": {"atd_teacher_fix": "yes"}}, "kd.atd_teacher_fix"),
    ({"kd": {"temperature": 1.0}}, "kd.temperature"),
])
def test_bad_keys_raise_naming_the_key(params, edit, key):
    validate_params(params)
    with pytest.raises(AclnetError, match=key.replace(".", r"\.")):
        validate_params(deep_merge(params, edit))


def test_missing_key_and_yaml_text_number(params):
    del params["train"]["lr_step"]
    with pytest.raises(AclnetError, match=r"train: 'lr_step' is a required property"):
        validate_params(params)
    params["train"]["lr_step"] = 20
    params["train"]["lr"] = "1e-4"  # what YAML makes of `lr: 1e-4`
    with pytest.raises(AclnetError, match=r"train\.lr.*1\.0e-4"):
        validate_params(params)


def test_role_and_kd_combinations(params):
    with pytest.raises(AclnetError, match="--kd on is for --role student"):
        resolve_recipe(params, "teacher", kd=True)
    with pytest.raises(AclnetError, match="--kd-weights needs --kd on"):
        resolve_recipe(params, "student", kd_weights_override={"cld": 1.0})
    with pytest.raises(AclnetError, match=r"tracks\.nope"):
        resolve_recipe(params, "student", track="nope")


def test_kd_weights_flag_overrides_params(params):
    weights = parse_kd_weights("cld=1,mgmd=0,atd=0")
    assert weights == {"cld": 1.0, "mgmd": 0.0, "atd": 0.0}
    recipe = resolve_recipe(params, "student", kd=True, kd_weights_override=weights)
    assert recipe.kd_weights == {"label": 1.0, "cld": 1.0, "mgmd": 0.0, "atd": 0.0,  # the paper's terms
                                 "response": 0.0, "fitnet": 0.0, "at": 0.0, "cwd": 0.0, "cirkd": 0.0}  # off in params
    for bad in ("cld", "kl=1", "cld=x", "atd=-1", ""):
        with pytest.raises(AclnetError, match="--kd-weights"):
            parse_kd_weights(bad)


def test_lr_schedule_matches_release(params):
    """The release halves lr at the start of every epoch e (0-based) with (e + 1) % 20 == 0."""
    params = deep_merge(params, {"train": {"lr_schedule": "step", "warmup_epochs": 3, "lr_step": 20,
                                           "lr_gamma": 0.5}})
    recipe = resolve_recipe(params, "student")
    release_lr, ours = 1.0, []
    for epoch in range(100):
        if (epoch + 1) % 20 == 0 and epoch != 0:
            release_lr *= 0.5
        assert recipe.lr_factor(epoch) == pytest.approx(release_lr)
        ours.append(recipe.lr_factor(epoch))
    assert ours[18] == 1.0 and ours[19] == 0.5 and ours[39] == 0.25


def test_cosine_schedule_with_warmup(params):
    # 10 epochs, 2 of warm-up: 1/3, 2/3, then 0.5 (1 + cos(pi k / 8)) for k = 0..7 at each epoch's start
    params = deep_merge(params, {"train": {"lr_schedule": "cosine", "warmup_epochs": 2, "epochs": 10}})
    recipe = resolve_recipe(params, "student")
    factors = [recipe.lr_factor(epoch) for epoch in range(10)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert factors[4] == pytest.approx(0.5 * (1 + 0.7071067812))   # k = 2: cos(pi / 4)
    assert factors[6] == pytest.approx(0.5)                         # k = 4: half way down
    assert factors[9] == pytest.approx(0.5 * (1 - 0.9238795325))   # k = 7: small, not 0 (the last epoch learns)
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))
    no_warmup = resolve_recipe(deep_merge(params, {"train": {"warmup_epochs": 0}}), "student")
    assert no_warmup.lr_factor(0) == 1.0
    with pytest.raises(AclnetError, match=r"train\.lr_schedule"):
        validate_params(deep_merge(params, {"train": {"lr_schedule": "linear"}}))


def test_kd_section_is_read_by_the_distilled_student_only(params):
    # The workflow tracks `kd` as a param of the distilled runs only: other runs must not depend on it.
    changed = deep_merge(params, {"kd": {"tau": 2.0, "weights": {"cld": 0.5}}})
    assert resolve_recipe(changed, "teacher") == resolve_recipe(params, "teacher")
    assert resolve_recipe(changed, "student") == resolve_recipe(params, "student")
    teacher = resolve_recipe(changed, "teacher")
    assert teacher.kd_weights is None and teacher.train_kd_modules is None
    assert resolve_recipe(changed, "student", kd=True).kd_tau == 2.0
    with pytest.raises(AclnetError, match=r"kd\.weights\.kl"):  # a bad kd section fails when loaded
        validate_params(deep_merge(params, {"kd": {"weights": {"kl": 1.0}}}))


def test_paper_preset_sod_track_follows_the_release_config(repo_root):
    # The release's config.py (its only SOD recipe): 200 epochs, lr 1e-4, batch 4, 320 px, clip 0.5,
    # lr x 0.1 every 60 epochs; the rail track keeps the distillation script's x 0.5 every 20, no clipping.
    from aclnet_kd.config import load_params

    params = load_params([repo_root / "params.yaml", repo_root / "config" / "paper.yaml"])
    for role in ("teacher", "student"):
        sod = resolve_recipe(params, role, track="sod")
        assert (sod.epochs, sod.lr, sod.batch_size, sod.image_size, sod.grad_clip) == (200, 1e-4, 4, 320, 0.5)
        assert sod.lr_schedule == "step"
        assert [sod.lr_factor(e) for e in (0, 58, 59, 118, 119)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    rail = resolve_recipe(params, "student", track="rail")
    assert (rail.lr_step, rail.lr_gamma, rail.grad_clip, rail.image_size, rail.batch_size) == (20, 0.5, 0, 256, 6)
    assert resolve_recipe(params, "teacher", track="rail").epochs == 150
    assert params["datasets"]["rgbd-sod"]["extra_train"] == ["DUT-RGBD"]


def test_grad_clip_clamps_each_gradient_value():
    import torch

    from aclnet_kd.train.training import clip_gradients

    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([weight])
    weight.grad = torch.tensor([-2.0, 0.1, 0.7])
    clip_gradients(optimizer, 0.5)
    assert weight.grad.tolist() == pytest.approx([-0.5, 0.1, 0.5])
    clip_gradients(optimizer, 0)  # 0: off
    assert weight.grad.tolist() == pytest.approx([-0.5, 0.1, 0.5])


def test_kd_method_weights_are_exactly_the_entry():
    """A kd_methods run's weights are its entry: unnamed terms 0, label 1 unless named; kd.weights not merged."""
    from params_helper import write_params

    from aclnet_kd.config import load_params
    from aclnet_kd.errors import AclnetError
    from aclnet_kd.losses.registry import KD_TERMS
    from aclnet_kd.train.recipe import kd_method_weights, resolve_recipe

    params = {"kd_methods": {"kd_fitnet": {"fitnet": 2.0}, "kd_r": {"response": 1.0, "label": 0.5}}}
    weights = kd_method_weights(params, "kd_fitnet")
    assert weights == {"label": 1.0, **dict.fromkeys(KD_TERMS, 0.0), "fitnet": 2.0}
    assert kd_method_weights(params, "kd_r")["label"] == 0.5
    with pytest.raises(AclnetError, match="kd_methods"):
        kd_method_weights(params, "kd_nope")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        full = load_params(write_params(Path(tmp) / "p.yaml", params))
    recipe = resolve_recipe(full, "student", kd=True, kd_weights_override=kd_method_weights(full, "kd_fitnet"))
    assert recipe.kd_weights["cld"] == 0.0 and recipe.kd_weights["fitnet"] == 2.0
    assert recipe.kd_options["at_beta"] == 1000.0
