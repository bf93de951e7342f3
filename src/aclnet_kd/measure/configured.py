"""Which model a measurement stage measures: ``--model`` (and ``--backbone``), or the model the workflow
configured in params ``models.<role>`` (``--params`` with ``--role``). Shared by ``aclnet complexity`` and
``aclnet latency``, so both measure the same model."""

from __future__ import annotations

import argparse
from typing import Any

from aclnet_kd.config import load_params, section
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
