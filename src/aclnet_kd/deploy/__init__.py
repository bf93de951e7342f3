"""Deployment: ``aclnet export`` (a checkpoint -> ONNX model + JSON sidecar, verified against PyTorch) and
``aclnet predict --onnx`` (maps from an exported model through onnxruntime, without torch). docs/deploy.md.

Nothing here is imported by ``import aclnet_kd``; ``onnx_predict`` and ``sidecar`` import no torch.
"""
