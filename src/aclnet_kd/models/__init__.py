"""Models: the Shunted Transformer backbones (registered with timm), ACLNet-T and ACLNet-S.

    from aclnet_kd.models import build_model, ACLNetOutput
    teacher = build_model("aclnet_t")                     # two Shunted-B, RGB-D
    student = build_model("aclnet_s", backbone="resnet18")  # any timm features_only model works too

Importing this package registers ``shunted_t``, ``shunted_s`` and ``shunted_b`` in timm's registry.
"""

from __future__ import annotations

from aclnet_kd.constants import DEFAULT_BACKBONES, MODEL_NAMES
from aclnet_kd.models.aclnet import ACLNet, ACLNetOutput, ACLNetStudent, ACLNetTeacher, build_backbone
from aclnet_kd.models.build import build_model
from aclnet_kd.models.loading import load_model_checkpoint
from aclnet_kd.models.shunted import ShuntedTransformer, load_pretrained

__all__ = ["build_model", "MODEL_NAMES", "DEFAULT_BACKBONES", "ACLNet", "ACLNetOutput", "ACLNetTeacher",
           "ACLNetStudent", "ShuntedTransformer", "build_backbone", "load_model_checkpoint", "load_pretrained"]
