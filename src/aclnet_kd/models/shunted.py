"""Shunted Transformer (Ren et al., "Shunted Self-Attention via Multi-Scale Token Aggregation", CVPR 2022).

Our own implementation on timm layers, written so that its state_dict keys and shapes equal those of the
official ImageNet checkpoints (``ckpt_T.pth``/``ckpt_S.pth``/``ckpt_B.pth``) and of the ACLNet-KD release,
and so that its eval forward matches theirs to float32 round-off. The variants are built with timm's
``build_model_with_cfg`` (as timm's own PVTv2 is), so they behave as any timm model::

    timm.create_model("shunted_t")                                       # ImageNet classifier (1000 classes)
    timm.create_model("shunted_t", num_classes=0)                        # no classifier (what ACLNet uses)
    timm.create_model("shunted_t", features_only=True, out_indices=(1, 2, 3))  # stage features, NCHW
    timm.create_model("shunted_t", pretrained=True, pretrained_cfg_overlay=dict(file="ckpt_T.pth"))

Pretrained weights come only from a local file (nothing is downloaded); timm reads it with
``weights_only=True`` and :func:`checkpoint_filter_fn` checks its keys strictly. The stage features are
NCHW at strides 4/8/16/32 with 64/128/256/512 channels (``forward_intermediates``).

Shunted self-attention (stages 1-3): the heads are split in two halves. Each half attends to keys/values
pooled at its own rate (a strided conv with kernel = stride: r and r/2 for reduction ratio r), so one layer
mixes coarse and fine context. A depthwise 3x3 conv on the values ("local enhancement") is added before the
attention. Stage 4 (r = 1) is plain multi-head attention whose local-enhanced values are added after it.

Importing this module registers ``shunted_t``, ``shunted_s`` and ``shunted_b`` in timm's registry.

Faithfulness notes (they matter for bit-level parity with the release, so they are kept on purpose):
the stem/patch-embedding LayerNorms and the key/value-pooling LayerNorms use PyTorch's default eps (1e-5)
while the block and stage norms use 1e-6; the MLP adds its depthwise conv as a residual before the GELU.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, trunc_normal_
from timm.models import (build_model_with_cfg, generate_default_cfgs, load_state_dict, register_model,
                         resolve_pretrained_cfg)
from torch import Tensor, nn

from aclnet_kd.constants import LEVEL_CHANNELS
from aclnet_kd.errors import AclnetError

__all__ = ["ShuntedTransformer", "load_pretrained", "check_weights", "checkpoint_filter_fn", "WeightsMismatch",
           "shunted_t", "shunted_s", "shunted_b", "SHUNTED_VARIANTS"]

EMBED_DIMS = LEVEL_CHANNELS  # every Shunted variant's stage widths: the ACLNet levels' channels
NUM_HEADS = (2, 4, 8, 16)
MLP_RATIOS = (8, 8, 4, 4)
SR_RATIOS = (8, 4, 2, 1)

# variant -> (depths, num_conv): the only things that change between T, S and B.
SHUNTED_VARIANTS: dict[str, tuple[tuple[int, int, int, int], int]] = {
    "shunted_t": ((1, 2, 4, 1), 0),
    "shunted_s": ((2, 4, 12, 1), 1),
    "shunted_b": ((3, 4, 24, 2), 2),
}

NormEps6 = partial(nn.LayerNorm, eps=1e-6)


def _tokens_to_image(tokens: Tensor, height: int, width: int) -> Tensor:
    """(B, N, C) tokens -> (B, C, H, W) view without a copy (the result is channels_last in memory)."""
    return tokens.transpose(1, 2).unflatten(2, (height, width))


def _image_to_tokens(image: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C); free when the image is channels_last."""
    return image.flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """fc1 -> GELU(h + depthwise3x3(h)) -> fc2: the convolutional feed-forward of PVTv2/Shunted."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        x = self.fc1(x)
        x = self.act(x + self.dwconv(x, height, width))
        return self.fc2(x)


class DWConv(nn.Module):
    """Depthwise 3x3 conv applied to a token sequence (wrapper kept for the checkpoints' key names)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        return _image_to_tokens(self.dwconv(_tokens_to_image(x, height, width)))


class ShuntedAttention(nn.Module):
    """Shunted self-attention; with ``sr_ratio == 1`` plain MHSA plus a local-enhancement conv on V."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads or (sr_ratio > 1 and num_heads % 2):
            raise ValueError(f"dim {dim} / num_heads {num_heads} cannot be split into two head groups")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            # Two key/value branches pooled at rates r and r/2, each serving half of the heads.
            self.act = nn.GELU()
            self.sr1 = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm1 = nn.LayerNorm(dim)
            self.sr2 = nn.Conv2d(dim, dim, kernel_size=sr_ratio // 2, stride=sr_ratio // 2)
            self.norm2 = nn.LayerNorm(dim)
            # Each branch projects to K and V for its half of the heads: 2 * (dim / 2) = dim outputs.
            self.kv1 = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv2 = nn.Linear(dim, dim, bias=qkv_bias)
            self.local_conv1 = nn.Conv2d(dim // 2, dim // 2, 3, 1, 1, groups=dim // 2)
            self.local_conv2 = nn.Conv2d(dim // 2, dim // 2, 3, 1, 1, groups=dim // 2)
        else:
            self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
            self.local_conv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def _shunted_branch(self, q: Tensor, image: Tensor, pool: nn.Conv2d, norm: nn.LayerNorm, kv_proj: nn.Linear,
                        local_conv: nn.Conv2d) -> Tensor:
        """Attention of ``q`` (B, h/2, N, d) over keys/values pooled from ``image`` by ``pool``."""
        pooled = pool(image)
        pooled_h, pooled_w = pooled.shape[-2:]
        kv = kv_proj(self.act(norm(_image_to_tokens(pooled))))  # (B, M, 2 * h/2 * d): [K | V]
        k, v = kv.unflatten(2, (2, -1)).unbind(2)  # each (B, M, h/2 * d), channel = head * d + i
        v = v + _image_to_tokens(local_conv(_tokens_to_image(v, pooled_h, pooled_w)))
        k = k.unflatten(2, (-1, self.head_dim)).transpose(1, 2)
        v = v.unflatten(2, (-1, self.head_dim)).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        batch, tokens, dim = x.shape
        q = self.q(x).unflatten(2, (self.num_heads, self.head_dim)).transpose(1, 2)  # (B, h, N, d)
        if self.sr_ratio > 1:
            image = _tokens_to_image(x, height, width)
            half = self.num_heads // 2
            out1 = self._shunted_branch(q[:, :half], image, self.sr1, self.norm1, self.kv1, self.local_conv1)
            out2 = self._shunted_branch(q[:, half:], image, self.sr2, self.norm2, self.kv2, self.local_conv2)
            # (B, h/2, N, d) -> (B, N, dim/2) per half, joined along channels: a single copy (the CPU
            # attention kernel already stores its output token-major, so the flatten is a view)
            out = torch.cat([out1.transpose(1, 2).flatten(2), out2.transpose(1, 2).flatten(2)], dim=-1)
        else:
            k, v = self.kv(x).unflatten(2, (2, -1)).unbind(2)  # each (B, N, dim)
            local = _image_to_tokens(self.local_conv(_tokens_to_image(v, height, width)))
            k = k.unflatten(2, (self.num_heads, self.head_dim)).transpose(1, 2)
            v = v.unflatten(2, (self.num_heads, self.head_dim)).transpose(1, 2)
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim) + local
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)), with stochastic depth."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = NormEps6(dim)
        self.attn = ShuntedAttention(dim, num_heads, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = NormEps6(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class ConvStem(nn.Module):
    """Stage-1 embedding: 7x7/2 conv-BN-ReLU, ``num_conv`` x (3x3 conv-BN-ReLU), 2x2/2 conv, LayerNorm."""

    def __init__(self, num_conv: int, in_chans: int = 3, dim: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_chans, dim, 7, 2, 3, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(dim, dim, 3, 1, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True)]
        layers.append(nn.Conv2d(dim, dim, kernel_size=2, stride=2))
        self.conv = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.conv(x)
        height, width = x.shape[-2:]
        return self.norm(_image_to_tokens(x)), height, width


class OverlapPatchEmbed(nn.Module):
    """Stages 2-4 embedding: overlapping 3x3/2 conv, then LayerNorm over channels."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(_image_to_tokens(x)), height, width


class ShuntedTransformer(nn.Module):
    """Four-stage Shunted Transformer, a timm classification model whose backbone is the whole point.

    Built by the registered ``shunted_t`` / ``shunted_s`` / ``shunted_b`` (via ``timm.create_model``), it behaves
    as any timm model: ``forward`` = ``forward_head(forward_features(x))``; ``forward_intermediates`` gives the
    four stage features, NCHW, at strides 4/8/16/32 with 64/128/256/512 channels (NCHW views of channels_last
    memory, no copy; ACLNet consumes these); ``features_only=True`` wraps it in timm's feature getter;
    ``num_classes=0`` drops the classifier. Constructed directly, the class defaults to no classifier
    (``num_classes=0``); the registered variants default to their 1000-class ImageNet head.
    """

    def __init__(self, depths: tuple[int, ...] = (1, 2, 4, 1), num_conv: int = 0, in_chans: int = 3,
                 num_classes: int = 0, global_pool: str = "avg", drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.depths = tuple(depths)
        self.num_stages = len(EMBED_DIMS)
        # Stochastic depth grows linearly over all blocks of all stages.
        total = sum(depths)
        drop_path = [drop_path_rate * j / max(total - 1, 1) for j in range(total)]
        cursor = 0
        for i, (dim, heads, mlp_ratio, sr_ratio) in enumerate(zip(EMBED_DIMS, NUM_HEADS, MLP_RATIOS, SR_RATIOS)):
            embed = ConvStem(num_conv, in_chans, dim) if i == 0 else OverlapPatchEmbed(EMBED_DIMS[i - 1], dim)
            blocks = nn.ModuleList(
                Block(dim, heads, mlp_ratio, sr_ratio, drop_path[cursor + j]) for j in range(depths[i])
            )
            cursor += depths[i]
            # Attribute names follow the official checkpoints: patch_embed{i}, block{i}, norm{i}.
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", NormEps6(dim))
        # What timm's feature wrappers read: one entry per stage, the module whose output is the feature.
        self.feature_info = [
            {"num_chs": dim, "reduction": 4 * 2**i, "module": f"norm{i + 1}"} for i, dim in enumerate(EMBED_DIMS)
        ]
        self.num_features = self.head_hidden_size = EMBED_DIMS[-1]
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes, global_pool)
        self.apply(_init_weights)

    # ---- classifier (timm's API) ----
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new ``num_classes``-way head on the pooled last stage (``0``: no head, ``forward`` gives features)."""
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    # ---- forward ----
    def _stage(self, index: int, x: Tensor) -> Tensor:
        """Stage ``index`` (0-based): NCHW in, NCHW out (a view of channels_last memory)."""
        x, height, width = getattr(self, f"patch_embed{index + 1}")(x)
        for block in getattr(self, f"block{index + 1}"):
            x = block(x, height, width)
        x = getattr(self, f"norm{index + 1}")(x)
        return x.view(x.shape[0], height, width, -1).permute(0, 3, 1, 2)

    def forward_intermediates(self, x: Tensor, indices: int | list[int] | tuple[int, ...] | None = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """timm's intermediate-feature API: the stage outputs picked by ``indices`` (None: all four; an int n:
        the last n), each already normalised by its stage norm (so ``norm`` changes nothing)."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take, last = _take_indices(self.num_stages, indices)
        intermediates = []
        for i in range(last + 1 if stop_early else self.num_stages):
            x = self._stage(i, x)
            if i in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(self, indices: int | list[int] | tuple[int, ...] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the stages after the last index taken (and the head); returns the absolute indices."""
        take, last = _take_indices(self.num_stages, indices)
        for i in range(last + 1, self.num_stages):
            for name in (f"patch_embed{i + 1}", f"block{i + 1}", f"norm{i + 1}"):
                delattr(self, name)
        if last + 1 < self.num_stages:
            self.num_features = self.head_hidden_size = EMBED_DIMS[last]
        self.num_stages = last + 1
        if prune_head or last + 1 < len(EMBED_DIMS):
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's feature map, NCHW (B, 512, H/32, W/32)."""
        for i in range(self.num_stages):
            x = self._stage(i, x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=(-2, -1))  # the mean over tokens, as the official classifier pools
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _take_indices(num_stages: int, indices: int | list[int] | tuple[int, ...] | None) -> tuple[list[int], int]:
    """timm's index convention: None -> all, int n -> the last n, a sequence -> those (negative from the end)."""
    if indices is None:
        indices = num_stages
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ValueError(f"last-n indices {indices} out of range 1..{num_stages}")
        take = list(range(num_stages - indices, num_stages))
    else:
        take = [i + num_stages if i < 0 else i for i in indices]
        if not take or any(not 0 <= i < num_stages for i in take):
            raise ValueError(f"feature indices {list(indices)} out of range for {num_stages} stages")
    return take, max(take)


def _init_weights(module: nn.Module) -> None:
    """The Shunted/PVT init: truncated-normal linears, He-normal (fan-out) convs, zero biases."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ---- local ImageNet weights ----
class WeightsMismatch(ValueError):
    """A weights file whose keys or shapes differ from the model's (the message lists them)."""


def _is_classifier(key: str, classifier: str) -> bool:
    return key == classifier or key.startswith(classifier + ".")


def check_weights(state: object, module: nn.Module, classifier: str = "head", adapted: tuple[str, ...] = ()) -> None:
    """Raise :class:`WeightsMismatch` unless ``state`` holds exactly ``module``'s weights (classifier aside).

    Missing BatchNorm ``num_batches_tracked`` counters are forgiven: they are counters, not weights, and
    some exports omit them. Keys in ``adapted`` may differ in shape (timm adapts the first conv to in_chans).
    """
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsMismatch(f"not a state_dict (expected a dict of tensors, flat or under 'model'/'state_dict'; "
                              f"found {type(state).__name__})")
    expected = {k: v for k, v in module.state_dict().items() if not _is_classifier(k, classifier)}
    given = {k: v for k, v in state.items() if not _is_classifier(k, classifier)}
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    mismatched = [f"{k}: file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in given if k in expected and k not in adapted and given[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        raise WeightsMismatch(
            f"weights do not match {type(module).__name__} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mis-shaped keys). "
            f"missing: {_preview(missing)}; unexpected: {_preview(unexpected)}; mis-shaped: {_preview(mismatched)}"
        )


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """timm's ``pretrained_filter_fn`` for the Shunted variants.

    The official checkpoints already use our key names (facts.md §1), so nothing is renamed; the filter
    checks the keys and shapes strictly, because timm loads non-strictly whenever it drops the classifier.
    """
    check_weights(state_dict, model, classifier="head", adapted=("patch_embed1.conv.0.weight",))
    return state_dict


def _require_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AclnetError(f"{path}: no such checkpoint file (pretrained weights are read from local files only; "
                          "nothing is downloaded)")
    return path


@contextmanager
def _reading_weights(path: Path) -> Iterator[None]:
    """Turn the errors of reading and checking the weights file ``path`` into AclnetErrors naming it."""
    try:
        yield
    except WeightsMismatch as err:
        raise AclnetError(f"{path}: {err}") from None
    except (AttributeError, RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        # timm's reader re-raises weights_only's UnpicklingError as a RuntimeError caused by it, and fails
        # with AttributeError on a file that holds a bare tensor instead of a dict.
        detail = (str(err) or type(err).__name__).splitlines()[0]
        if isinstance(err, pickle.UnpicklingError) or isinstance(err.__cause__, pickle.UnpicklingError):
            raise AclnetError(f"{path}: refused to load: the file is not a plain weights file (it carries pickled "
                              f"objects or code, which weights_only=True does not run). Details: {detail}") from None
        raise AclnetError(f"{path}: not a state_dict that torch can read with weights_only=True ({detail})") from None


def load_pretrained(module: nn.Module, path: str | os.PathLike, classifier: str = "head") -> None:
    """Load local ImageNet weights into any ``module`` strictly, apart from its ``classifier``.

    Read with timm's own reader (``weights_only=True``; flat, or wrapped under ``"state_dict"``/``"model"``);
    raises :class:`AclnetError` naming ``path`` and listing missing, unexpected and mis-shaped keys when
    anything but the classifier differs. Used for timm backbones other than Shunted; the Shunted variants
    load through ``timm.create_model(..., pretrained=True, pretrained_cfg_overlay=dict(file=path))``.
    """
    path = _require_file(path)
    with _reading_weights(path):
        state = load_state_dict(str(path), weights_only=True)
        check_weights(state, module, classifier)
    # strict=False only because the classifier stays the module's own; everything else was checked above
    module.load_state_dict({k: v for k, v in state.items() if not _is_classifier(k, classifier)}, strict=False)


def _preview(items: list[str], limit: int = 12) -> str:
    if not items:
        return "none"
    more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ---- timm registration ----
def _cfg(**kwargs: Any) -> dict[str, Any]:
    # No url and no hf_hub_id: weights only ever come from a local file (pretrained_cfg_overlay=dict(file=...)).
    return {"url": "", "num_classes": 1000, "input_size": (3, 224, 224), "mean": IMAGENET_DEFAULT_MEAN,
            "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed1.conv.0", "classifier": "head",
            "origin_url": "https://github.com/OliverRensu/Shunted-Transformer", **kwargs}


default_cfgs = generate_default_cfgs({f"{name}.in1k": _cfg() for name in SHUNTED_VARIANTS})


def _local_weights(variant: str, kwargs: dict[str, Any]) -> Path | None:
    """The local file ``pretrained=True`` will read (None for an in-memory state_dict); refuse anything else."""
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.get("pretrained_cfg"),
                                 pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay"))
    if cfg.state_dict is not None:
        return None
    if not cfg.file:
        raise AclnetError(f"{variant}: nothing is downloaded; pass the local ImageNet file with "
                          f"timm.create_model({variant!r}, pretrained=True, pretrained_cfg_overlay=dict(file=PATH))")
    return _require_file(cfg.file)


def _create_shunted(variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    depths, num_conv = SHUNTED_VARIANTS[variant]
    # out_indices only matter with features_only=True (timm's feature getter over forward_intermediates).
    feature_cfg = {"feature_cls": "getter", "out_indices": kwargs.pop("out_indices", tuple(range(len(EMBED_DIMS))))}
    _take_indices(len(EMBED_DIMS), feature_cfg["out_indices"])  # a bad index fails here, not as a file error
    path = _local_weights(variant, kwargs) if pretrained else None
    with _reading_weights(path) if path is not None else nullcontext():
        return build_model_with_cfg(ShuntedTransformer, variant, pretrained, depths=depths, num_conv=num_conv,
                                    pretrained_filter_fn=checkpoint_filter_fn, feature_cfg=feature_cfg, **kwargs)


@register_model
def shunted_t(pretrained: bool = False, **kwargs: Any) -> ShuntedTransformer:
    """Shunted-T: depths 1/2/4/1, no extra stem conv (11.5M params with its ImageNet head)."""
    return _create_shunted("shunted_t", pretrained, **kwargs)


@register_model
def shunted_s(pretrained: bool = False, **kwargs: Any) -> ShuntedTransformer:
    """Shunted-S: depths 2/4/12/1, one extra stem conv (22.4M params with its ImageNet head)."""
    return _create_shunted("shunted_s", pretrained, **kwargs)


@register_model
def shunted_b(pretrained: bool = False, **kwargs: Any) -> ShuntedTransformer:
    """Shunted-B: depths 3/4/24/2, two extra stem convs (39.6M params with its ImageNet head)."""
    return _create_shunted("shunted_b", pretrained, **kwargs)
