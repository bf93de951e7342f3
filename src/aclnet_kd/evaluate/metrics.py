"""The field's saliency metrics, computed by PySODMetrics (``py_sod_metrics``) and nothing else.

:class:`SODMetrics` bundles the five PySODMetrics evaluators that Table I / Table II need and reads their
results out as flat numbers (``metrics.json``), dataset-mean curves (``curves.csv``) and per-image rows
(``per_image.csv``). The formulas are PySODMetrics' own (MATLAB-compatible):

* inputs are uint8 maps; ``gt > 128`` is foreground; each prediction is min-max normalised per image;
* S-measure with alpha = 0.5 (Fan et al., ICCV 2017);
* F-measure with beta^2 = 0.3 at the 256 thresholds (Achanta et al., CVPR 2009); maxF / meanF are the
  maximum / mean over thresholds of the dataset-mean curve; adpF thresholds each map at twice its mean;
* E-measure likewise (Fan et al., IJCAI 2018);
* weighted F-measure with PySODMetrics' default beta = 1 (Margolin et al., CVPR 2014, as in their code);
* MAE per image, then averaged over images.

Every evaluator keeps one entry per image in plain lists, so evaluators filled in separate processes on
contiguous chunks of the dataset can be concatenated in order (:meth:`SODMetrics.merge`); the merged
object then gives exactly the numbers of a serial run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import py_sod_metrics as psm

# Keys of metrics.json, in table order.
METRIC_KEYS = ("Sm", "MAE", "maxF", "meanF", "adpF", "maxE", "meanE", "adpE", "wF")
F_BETA2 = 0.3  # beta^2 of the F-measure (PySODMetrics calls it `beta`)
NUM_THRESHOLDS = 256


def _merge_state(into: Any, other: Any) -> Any:
    """Append ``other``'s per-image records to ``into`` (lists extend, dicts/objects recurse)."""
    if isinstance(into, list):
        into.extend(other)
        return into
    if isinstance(into, dict):
        for key, value in other.items():
            into[key] = _merge_state(into[key], value) if key in into else value
        return into
    if hasattr(into, "__dict__") and type(into) is type(other):
        for key, value in vars(other).items():
            setattr(into, key, _merge_state(getattr(into, key), value))
        return into
    # Scalars (e.g. Emeasure's scratch `gt_size` of the last image) are per-step scratch, not results.
    return into


class SODMetrics:
    """S-measure, MAE, F-measure (max/mean/adaptive + PR curve), E-measure and weighted F, per dataset."""

    def __init__(self) -> None:
        self.sm = psm.Smeasure(alpha=0.5)
        self.mae = psm.MAE()
        self.em = psm.Emeasure()
        self.wfm = psm.WeightedFmeasure()
        # FmeasureV2 shares one thresholding pass between precision, recall and F.
        self.fm = psm.FmeasureV2(
            metric_handlers={
                "fm": psm.FmeasureHandler(with_dynamic=True, with_adaptive=True, beta=F_BETA2),
                "pre": psm.PrecisionHandler(with_dynamic=True, with_adaptive=False),
                "rec": psm.RecallHandler(with_dynamic=True, with_adaptive=False),
            }
        )
        self.num_images = 0

    def step(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score one image: ``pred`` and ``gt`` are uint8 HxW arrays of the same shape."""
        if pred.dtype != np.uint8 or gt.dtype != np.uint8:
            raise TypeError(f"expected uint8 maps, got pred {pred.dtype} and gt {gt.dtype}")
        if pred.shape != gt.shape or pred.ndim != 2:
            raise ValueError(f"expected two HxW maps of one shape, got pred {pred.shape} and gt {gt.shape}")
        for evaluator in (self.sm, self.mae, self.em, self.wfm, self.fm):
            evaluator.step(pred=pred, gt=gt)
        self.num_images += 1

    def merge(self, other: "SODMetrics") -> "SODMetrics":
        """Append the images ``other`` has scored after this object's own (order is kept)."""
        for name in ("sm", "mae", "em", "wfm", "fm"):
            _merge_state(getattr(self, name), getattr(other, name))
        self.num_images += other.num_images
        return self

    # ---- read-outs ----
    def results(self) -> dict[str, float]:
        """The flat dataset-level numbers of metrics.json (keys :data:`METRIC_KEYS`)."""
        if self.num_images == 0:
            raise ValueError("no images were scored")
        fm = self.fm.get_results()["fm"]
        em = self.em.get_results()["em"]
        return {
            "Sm": float(self.sm.get_results()["sm"]),
            "MAE": float(self.mae.get_results()["mae"]),
            "maxF": float(fm["dynamic"].max()),
            "meanF": float(fm["dynamic"].mean()),
            "adpF": float(fm["adaptive"]),
            "maxE": float(em["curve"].max()),
            "meanE": float(em["curve"].mean()),
            "adpE": float(em["adp"]),
            "wF": float(self.wfm.get_results()["wfm"]),
        }

    def curves(self) -> dict[str, np.ndarray]:
        """Dataset-mean curves over thresholds 0..255 (ascending; a pixel is foreground if >= threshold).

        PySODMetrics stores its curves from threshold 255 down to 0; they are flipped here so the
        threshold column reads naturally.
        """
        results = self.fm.get_results()
        return {
            "threshold": np.arange(NUM_THRESHOLDS),
            "precision": results["pre"]["dynamic"][::-1],
            "recall": results["rec"]["dynamic"][::-1],
            "fmeasure": results["fm"]["dynamic"][::-1],
            "emeasure": self.em.get_results()["em"]["curve"][::-1],
        }

    def per_image(self) -> dict[str, np.ndarray]:
        """One value per scored image and metric, in scoring order (max/mean over that image's curve)."""
        f_curves = np.asarray(self.fm._metric_handlers["fm"].dynamic_results, dtype=np.float64)
        e_curves = np.asarray(self.em.changeable_ems, dtype=np.float64)
        return {
            "Sm": np.asarray(self.sm.sms, dtype=np.float64),
            "MAE": np.asarray(self.mae.maes, dtype=np.float64),
            "maxF": f_curves.max(axis=1),
            "meanF": f_curves.mean(axis=1),
            "adpF": np.asarray(self.fm._metric_handlers["fm"].adaptive_results, dtype=np.float64),
            "maxE": e_curves.max(axis=1),
            "meanE": e_curves.mean(axis=1),
            "adpE": np.asarray(self.em.adaptive_ems, dtype=np.float64),
            "wF": np.asarray(self.wfm.weighted_fms, dtype=np.float64),
        }
