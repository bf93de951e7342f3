"""Facts of the ACLNet design that several stages share, each written once (no torch, no timm).

Stages import these names instead of repeating the literals.
"""

from __future__ import annotations

# Channels of the four feature levels of ACLNet (backbone stages s1..s4 and decoder levels am1..am4, strides
# 4..32): Shunted's embedding widths, which the decoder and the KD losses share.
LEVEL_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)

# build_model name -> default backbone, as in the paper and the release: ACLNet-T (RGB-D) and ACLNet-S (RGB).
TEACHER_MODEL, STUDENT_MODEL = "aclnet_t", "aclnet_s"
DEFAULT_BACKBONES: dict[str, str] = {TEACHER_MODEL: "shunted_b", STUDENT_MODEL: "shunted_t"}
MODEL_NAMES: tuple[str, ...] = tuple(DEFAULT_BACKBONES)

# The square input side at which Table I's FLOPs, Params and latency are measured (aclnet complexity / latency
# --size), as the paper did.
MEASURE_SIZE = 256

# The two roles a model plays (params `models.<role>`, `train.<role>`; aclnet train --role, predict --arch).
ROLES: tuple[str, ...] = ("teacher", "student")

# How a depth file encodes distance: near = bright (the pipeline's convention) or near = dark (inverted).
DEPTH_POLARITIES: tuple[str, ...] = ("near_bright", "near_dark")

# A synthetic dataset source -> its generator, "module:function", loaded by name (aclnet prepare), so that the
# workflow can make each prepare job depend on its own source's module only (workflow.plan.code_files).
SYNTHETIC_GENERATORS: dict[str, str] = {
    "synthetic-rail": "aclnet_kd.data.synthetic_rail:generate_rail",
    "synthetic-sod": "aclnet_kd.data.synthetic_sod:generate_sod",
}
