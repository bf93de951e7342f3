"""`aclnet complexity`: parameters and MACs of a model, counted with torch.utils.flop_counter.

    aclnet complexity --model aclnet_t [--backbone NAME] --size 256 [--out results/complexity/aclnet_t.json]
    aclnet complexity --params params.yaml --role teacher --size 256 --out ...   (the model of `models.teacher`)

prints one JSON object: model, input_size, batch, params, params_m, macs_g (every MAC, batch 1),
macs_g_excl_matmul (thop's convention, the one papers usually report: batched matmuls, i.e. attention and
the WF channel attention, are not counted) and by_op (MACs per ATen op).

The counted forward is the released one: all four saliency heads are evaluated (our eval forward skips
Heads 2-4, which changes the total by less than 0.001 G). The model is built on the ``meta`` device, so
counting needs no weights, no memory and almost no time. Parameters exclude the backbones' unused ImageNet
classifiers, which our backbones never build.

Against the release's own count (released_models.json) conv and linear MACs agree exactly; our bmm total is
smaller by sum(C^2) = 348,160 MACs (0.00035 G) per model because the release forms the WF norm products
n_c * n_c' with a k=1 batched matmul where we use a broadcast multiply (same values).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_write_text
from aclnet_kd.measure.configured import add_model_options, model_config
from aclnet_kd.models import build_model

aten = torch.ops.aten

# Batched matrix products that thop (module hooks on conv/linear layers) does not see.
MATMUL_OPS = ("aten.bmm", "aten.baddbmm", "aten._scaled_dot_product_flash_attention_for_cpu",
              "aten._scaled_dot_product_flash_attention", "aten._scaled_dot_product_efficient_attention",
              "aten._scaled_dot_product_cudnn_attention")


def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
    # The flop counter knows the CUDA attention kernels but not the CPU one; its cost is the same.
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def measure_complexity(model: torch.nn.Module, size: int, rgbd: bool | None = None) -> dict[str, Any]:
    """Count params and MACs of one forward of ``model`` on a batch-1 ``size`` x ``size`` input.

    The inputs live on the model's device (use ``meta`` for a free count). ``rgbd`` defaults to
    ``model.is_rgbd``; an RGB-D model also gets a (1, 1, size, size) depth map.
    """
    if size <= 0 or size % 32:
        raise AclnetError(f"--size {size}: must be a positive multiple of 32")
    rgbd = getattr(model, "is_rgbd", False) if rgbd is None else rgbd
    device = next(model.parameters()).device
    inputs = [torch.zeros(1, 3, size, size, device=device)]
    if rgbd:
        inputs.append(torch.zeros(1, 1, size, size, device=device))
    counter = FlopCounterMode(display=False,
                              custom_mapping={aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops})
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(*inputs, return_all=True)
    finally:
        model.train(was_training)
    by_op = {str(op): flops // 2 for op, flops in sorted(counter.get_flop_counts()["Global"].items(), key=str)}
    params = sum(p.numel() for p in model.parameters())
    macs = sum(by_op.values())
    macs_excl = sum(v for op, v in by_op.items() if op not in MATMUL_OPS)
    return {
        "input_size": size,
        "batch": 1,
        "params": params,
        "params_m": round(params / 1e6, 3),
        "macs_g": round(macs / 1e9, 3),
        "macs_g_excl_matmul": round(macs_excl / 1e9, 3),
        "by_op": by_op,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, "count")


def main(args: argparse.Namespace) -> int:
    name, cfg = model_config(args)
    with torch.device("meta"):  # shapes only: no weights allocated, no init cost
        model = build_model(name, **cfg)
    result = {"model": name, **cfg, **measure_complexity(model, args.size)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")
    return 0
