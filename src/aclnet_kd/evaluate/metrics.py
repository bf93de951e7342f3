"""The field's saliency metrics, computed by PySODMetrics (``py_sod_metrics``) and nothing else.

:class:`SODMetrics` scores with the five PySODMetrics evaluators that Table I / Table II need and reads their
results out as flat numbers (``metrics.json``), dataset-mean curves (``curves.csv``) and per-image rows
(``per_image.csv``). The formulas are PySODMetrics' own (MATLAB-compatible):

* inputs are uint8 maps; ``gt > 128`` is foreground; each prediction is min-max normalised per image;
* S-measure with alpha = 0.5 (Fan et al., ICCV 2017);
* F-measure with beta^2 = 0.3 at the 256 thresholds (Achanta et al., CVPR 2009); maxF / meanF are the
  maximum / mean over thresholds of the dataset-mean curve; adpF thresholds each map at twice its mean;
* E-measure likewise (Fan et al., IJCAI 2018);
* weighted F-measure with PySODMetrics' default beta = 1 (Margolin et al., CVPR 2014, as in their code);
* MAE per image, then averaged over images.

Only PySODMetrics' public API is used: each image is scored by fresh evaluators (``step`` once, then
``get_results``, which for one image is that image's own value or curve), and :class:`SODMetrics` keeps those
per-image records itself. The dataset numbers are then the per-image means, computed exactly as
``get_results`` computes them over many images, so they are bit-identical to one long-lived evaluator's.
Because the records are ours, objects filled in separate processes on contiguous chunks of the dataset are
concatenated in order (:meth:`SODMetrics.merge`) and give exactly the numbers of a serial run.
"""

from __future__ import annotations

import numpy as np
import py_sod_metrics as psm

# Keys of metrics.json, in table order.
METRIC_KEYS = ("Sm", "MAE", "maxF", "meanF", "adpF", "maxE", "meanE", "adpE", "wF")
F_BETA2 = 0.3  # beta^2 of the F-measure (PySODMetrics calls it `beta`)
NUM_THRESHOLDS = 256
# One image's record: scalars and 256-point curves (PySODMetrics' order, threshold 255 down to 0).
_SCALARS = ("sm", "mae", "wfm", "adp_f", "adp_e")
_CURVES = ("f_curve", "pre_curve", "rec_curve", "e_curve")


def _score_image(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """One image's numbers, each from a fresh PySODMetrics evaluator's public ``get_results``."""
    evaluators = {
        "sm": psm.Smeasure(alpha=0.5), "mae": psm.MAE(), "em": psm.Emeasure(), "wfm": psm.WeightedFmeasure(),
        # FmeasureV2 shares one thresholding pass between precision, recall and F.
        "fm": psm.FmeasureV2(metric_handlers={
            "fm": psm.FmeasureHandler(with_dynamic=True, with_adaptive=True, beta=F_BETA2),
            "pre": psm.PrecisionHandler(with_dynamic=True, with_adaptive=False),
            "rec": psm.RecallHandler(with_dynamic=True, with_adaptive=False),
        }),
    }
    results = {}
    for name, evaluator in evaluators.items():
        evaluator.step(pred=pred, gt=gt)
        results[name] = evaluator.get_results()
    fm, em = results["fm"], results["em"]["em"]
    record = {"sm": results["sm"]["sm"], "mae": results["mae"]["mae"], "wfm": results["wfm"]["wfm"],
              "adp_f": fm["fm"]["adaptive"], "adp_e": em["adp"], "f_curve": fm["fm"]["dynamic"],
              "pre_curve": fm["pre"]["dynamic"], "rec_curve": fm["rec"]["dynamic"], "e_curve": em["curve"]}
    return {key: np.asarray(value, dtype=np.float64) for key, value in record.items()}


class SODMetrics:
    """S-measure, MAE, F-measure (max/mean/adaptive + PR curve), E-measure and weighted F, per dataset."""

    def __init__(self) -> None:
        self.records: dict[str, list[np.ndarray]] = {key: [] for key in _SCALARS + _CURVES}

    @property
    def num_images(self) -> int:
        return len(self.records["sm"])

    def step(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score one image: ``pred`` and ``gt`` are uint8 HxW arrays of the same shape."""
        if pred.dtype != np.uint8 or gt.dtype != np.uint8:
            raise TypeError(f"expected uint8 maps, got pred {pred.dtype} and gt {gt.dtype}")
        if pred.shape != gt.shape or pred.ndim != 2:
            raise ValueError(f"expected two HxW maps of one shape, got pred {pred.shape} and gt {gt.shape}")
        for key, value in _score_image(pred, gt).items():
            self.records[key].append(value)

    def merge(self, other: "SODMetrics") -> "SODMetrics":
        """Append the images ``other`` has scored after this object's own (order is kept)."""
        for key, values in other.records.items():
            self.records[key].extend(values)
        return self

    def _mean(self, key: str) -> np.ndarray:
        # np.mean over the stacked float64 records: the reduction get_results itself applies
        return np.mean(np.array(self.records[key], dtype=np.float64), axis=0)

    def _stacked(self, key: str) -> np.ndarray:
        return np.array(self.records[key], dtype=np.float64)

# ---- read-outs ----
    def results(self) -> dict[str, float]:
        """The flat dataset-level numbers of metrics.json (keys :data:`METRIC_KEYS`)."""
        if self.num_images == 0:
            raise ValueError("no images were scored")
        f_curve, e_curve = self._mean("f_curve"), self._mean("e_curve")
        return {
            "Sm": float(self._mean("sm")),
            "MAE": float(self._mean("mae")),
            "maxF": float(f_curve.max()),
            "meanF": float(f_curve.mean()),
            "adpF": float(self._mean("adp_f")),
            "maxE": float(e_curve.max()),
            "meanE": float(e_curve.mean()),
            "adpE": float(self._mean("adp_e")),
            "wF": float(self._mean("wfm")),
        }

    def curves(self) -> dict[str, np.ndarray]:
        """Dataset-mean curves over thresholds 0..255 (ascending; a pixel is foreground if >= threshold).

        PySODMetrics stores its curves from threshold 255 down to 0; they are flipped here so the
        threshold column reads naturally.
        """
        return {
            "threshold": np.arange(NUM_THRESHOLDS),
            "precision": self._mean("pre_curve")[::-1],
            "recall": self._mean("rec_curve")[::-1],
            "fmeasure": self._mean("f_curve")[::-1],
            "emeasure": self._mean("e_curve")[::-1],
        }

    def per_image(self) -> dict[str, np.ndarray]:
        """One value per scored image and metric, in scoring order (max/mean over that image's curve)."""
        f_curves, e_curves = self._stacked("f_curve"), self._stacked("e_curve")
        return {
            "Sm": self._stacked("sm"),
            "MAE": self._stacked("mae"),
            "maxF": f_curves.max(axis=1),
            "meanF": f_curves.mean(axis=1),
            "adpF": self._stacked("adp_f"),
            "maxE": e_curves.max(axis=1),
            "meanE": e_curves.mean(axis=1),
            "adpE": self._stacked("adp_e"),
            "wF": self._stacked("wfm"),
        }
