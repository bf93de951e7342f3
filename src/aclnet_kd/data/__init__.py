"""Data stage: synthetic generators, real-layout adapters, validation, the prepared cache and datasets."""

from aclnet_kd.data.dataset import PreparedData, SaliencyDataset, TrainingSet, normalize_batch, open_prepared

__all__ = ["PreparedData", "SaliencyDataset", "TrainingSet", "normalize_batch", "open_prepared"]
