"""Shunted Transformer (Ren et al., "Shunted Self-Attention via Multi-Scale Token Aggregation", CVPR 2022).

Our own implementation on timm layers, written so that its state_dict keys and shapes equal those of the
official ImageNet checkpoints (``ckpt_T.pth``/``ckpt_S.pth``/``ckpt_B.pth``) and of the ACLNet-KD release,
and so that its eval forward matches theirs to float32 round-off. It is a pure feature extractor: ``forward``
returns the four stage features, NCHW, at strides 4/8/16/32 (64/128/256/512 channels). The ImageNet
classifier is never built; :func:`load_pretrained` drops it from a checkpoint.

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
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import register_model
from torch import Tensor, nn

from aclnet_kd.errors import AclnetError

__all__ = ["ShuntedTransformer", "load_pretrained", "shunted_t", "shunted_s", "shunted_b", "SHUNTED_VARIANTS"]

EMBED_DIMS = (64, 128, 256, 512)
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
    """Four-stage Shunted Transformer feature extractor.

    ``forward(x)`` returns ``[f1, f2, f3, f4]``, NCHW, at strides 4/8/16/32 with 64/128/256/512 channels.
    The features are NCHW views of channels_last memory (no copy), which the next convs consume directly.
    """

    def __init__(self, depths: tuple[int, ...] = (1, 2, 4, 1), num_conv: int = 0, in_chans: int = 3,
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
        self.feature_info = [
            {"num_chs": dim, "reduction": 4 * 2**i, "module": f"norm{i + 1}"} for i, dim in enumerate(EMBED_DIMS)
        ]
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        batch = x.shape[0]
        features = []
        for i in range(1, self.num_stages + 1):
            x, height, width = getattr(self, f"patch_embed{i}")(x)
            for block in getattr(self, f"block{i}"):
                x = block(x, height, width)
            x = getattr(self, f"norm{i}")(x)
            x = x.view(batch, height, width, -1).permute(0, 3, 1, 2)  # NCHW view, channels_last memory
            features.append(x)
        return features

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        # A full ImageNet or ACLNet checkpoint carries the unused classifier (``head.*``): drop it, so that
        # an authors' checkpoint loads with strict=True. Nothing else is forgiven.
        for name in ("head.weight", "head.bias"):
            state_dict.pop(prefix + name, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


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


def load_pretrained(module: nn.Module, path: str | os.PathLike, classifier: str = "head") -> None:
    """Load local ImageNet weights into ``module`` (strictly, apart from the classifier).

    Accepts a flat state_dict or one wrapped under ``"model"`` or ``"state_dict"``; drops the keys under the
    ``classifier`` prefix; raises :class:`AclnetError` listing missing, unexpected and mis-shaped keys when
    anything else differs. Reads only through :func:`aclnet_kd.checkpoint.safe_load` (weights_only=True).
    """
    from aclnet_kd.checkpoint import safe_load  # deferred: checkpoint imports the models package

    state = safe_load(path)
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise AclnetError(f"{path}: not a state_dict (expected a dict of tensors, flat or under 'model'/"
                          f"'state_dict'; found {type(state).__name__})")
    def is_classifier(key: str) -> bool:
        return key == classifier or key.startswith(classifier + ".")

    state = {k: v for k, v in state.items() if not is_classifier(k)}
    expected = {k: v for k, v in module.state_dict().items() if not is_classifier(k)}  # a module may keep one
    # BatchNorm's num_batches_tracked is a counter, not a weight; some exports omit it.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        raise AclnetError(
            f"{path}: weights do not match {type(module).__name__} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mis-shaped keys). "
            f"missing: {_preview(missing)}; unexpected: {_preview(unexpected)}; mis-shaped: {_preview(mismatched)}"
        )
    module.load_state_dict(state, strict=False)


def _preview(items: list[str], limit: int = 12) -> str:
    if not items:
        return "none"
    more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _create_shunted(variant: str, pretrained: bool = False, **kwargs) -> ShuntedTransformer:  # noqa: ANN003
    if pretrained:
        raise AclnetError(f"{variant}: nothing is downloaded; build it with pretrained=False and load a local "
                          "ImageNet file with aclnet_kd.models.shunted.load_pretrained(model, path)")
    # Arguments timm.create_model passes to every entrypoint; the model is always a feature extractor.
    for name in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "features_only", "num_classes",
                 "global_pool"):
        kwargs.pop(name, None)
    out_indices = kwargs.pop("out_indices", None)
    if out_indices is not None and tuple(out_indices) != (0, 1, 2, 3):
        raise AclnetError(f"{variant}: only out_indices=(0, 1, 2, 3) is supported, got {out_indices}")
    depths, num_conv = SHUNTED_VARIANTS[variant]
    model = ShuntedTransformer(depths=depths, num_conv=num_conv, **kwargs)
    model.pretrained_cfg = {"architecture": variant, "classifier": "head", "num_classes": 0}
    return model


@register_model
def shunted_t(pretrained: bool = False, **kwargs) -> ShuntedTransformer:  # noqa: ANN003
    """Shunted-T: depths 1/2/4/1, no extra stem conv (11.5M params with its ImageNet head)."""
    return _create_shunted("shunted_t", pretrained, **kwargs)


@register_model
def shunted_s(pretrained: bool = False, **kwargs) -> ShuntedTransformer:  # noqa: ANN003
    """Shunted-S: depths 2/4/12/1, one extra stem conv (22.4M params with its ImageNet head)."""
    return _create_shunted("shunted_s", pretrained, **kwargs)


@register_model
def shunted_b(pretrained: bool = False, **kwargs) -> ShuntedTransformer:  # noqa: ANN003
    """Shunted-B: depths 3/4/24/2, two extra stem convs (39.6M params with its ImageNet head)."""
    return _create_shunted("shunted_b", pretrained, **kwargs)
