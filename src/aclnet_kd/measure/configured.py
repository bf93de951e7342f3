"""Which model a measurement stage measures: ``--model`` (and ``--backbone``), or the model the workflow
configured in params ``models.<role>`` (``--params`` with ``--role``). Shared by ``aclnet complexity`` and
``aclnet latency``, so both measure the same model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aclnet_kd.config import load_params, section
from aclnet_kd.constants import MEASURE_SIZE, MODEL_NAMES
from aclnet_kd.errors import AclnetError


def model_config(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(model name, build_model cfg) from --params/--role (the workflow's configured backbone) or --model."""
    if (args.params is None) != (args.role is None):
        raise AclnetError("--params and --role go together")
    if args.role is not None:
        if args.model or args.backbone:
            raise AclnetError("--role takes the model and backbone from params; leave out --model/--backbone")
        spec = section(load_params(args.params), f"models.{args.role}")
        # Only what changes the architecture: pretrained weights would not change the count.
        return spec["name"], {k: spec[k] for k in ("backbone",) if spec.get(k)}
    if args.model is None:
        raise AclnetError("give --model NAME, or --params FILE --role ROLE")
    return args.model, ({"backbone": args.backbone} if args.backbone else {})


def add_model_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """The options that choose the model and its input (read by :func:`model_config`), and --out: the same for
    every stage that measures one model (``aclnet complexity``, ``aclnet latency``). ``verb`` says what the
    stage does to it ("count", "time")."""
    parser.add_argument("--model", choices=MODEL_NAMES, help="model name for build_model")
    parser.add_argument("--size", type=int, default=MEASURE_SIZE,
                        help=f"square input side, a multiple of 32 (default {MEASURE_SIZE}, as the paper)")
    parser.add_argument("--backbone", default=None, help="backbone override (a Shunted variant or timm name)")
    parser.add_argument("--params", action="append", type=Path,
                        help=f"with --role: {verb} the model configured in params `models.<role>` (repeatable)")
    parser.add_argument("--role", choices=("teacher", "student"), help="which model of params `models`")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
