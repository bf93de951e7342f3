"""The "operating point" table (``results/tables/operating_point.{csv,md}``): per track, run and test split,
the detector's decisions scored at each run's own threshold, chosen on its validation split by ``aclnet
train``: the threshold (0-1), pixel IoU, Dice, precision and recall of the binary masks, and the share of
ground-truth defects found (``evaluate/binary_metrics.py``; the matching rule is in docs/evaluation.md).
Mean ± std over seeds. A row whose metrics.json has no ``op_*`` numbers (no operating point recorded, or
maps from elsewhere) shows "—".
"""

from __future__ import annotations

import math

import pandas as pd

from aclnet_kd.report.collect import RunResults, TrackSettings
from aclnet_kd.report.formatting import fmt, fmt_mean_std, markdown_table
from aclnet_kd.workflow.runs import LABELS
COLUMNS = {"op_threshold": "threshold", "op_IoU": "IoU", "op_Dice": "Dice", "op_precision": "precision",
           "op_recall": "recall", "op_detection_rate": "defects found"}


def _cell(result: RunResults, split: str, key: str) -> tuple[float, float] | None:
    if not all(key in m for m in result.metrics[split]):
        return None
    return result.mean_std(split, key)


def _rows(settings: TrackSettings, runs: dict[str, RunResults], decimals: int) -> tuple[list[dict], list[list[str]]]:
    csv_rows, md_rows = [], []
    for run, result in runs.items():
        label = LABELS.get(run, run)
        for split in settings.splits:
            cells = {key: _cell(result, split, key) for key in COLUMNS}
            csv_rows.append({"track": settings.name, "run": run, "model": label, "split": split, "n": result.n,
                             **{name: (cells[key][0] if cells[key] else math.nan) for key, name in COLUMNS.items()},
                             **{f"{name}_std": (cells[key][1] if cells[key] else math.nan)
                                for key, name in COLUMNS.items()}})
            md_rows.append([label, split, str(result.n)] + [fmt(None, decimals) if cells[key] is None
                                                            else fmt_mean_std(*cells[key], decimals)
                                                            for key in COLUMNS])
    return csv_rows, md_rows


def operating_point_table(tracks: dict[str, tuple[TrackSettings, dict[str, RunResults]]], decimals: int
                          ) -> tuple[pd.DataFrame, str]:
    """{track: (settings, runs)} -> (frame, markdown) of the table, one section per track."""
    frames, parts = [], ["# The detector at its operating point\n",
                         "Each run's binary masks at its own threshold (chosen on its validation split, "
                         "params `operating_point`), on each test split: pixel IoU, Dice, precision and recall "
                         "(pooled pixels, PySODMetrics FmeasureV2 binary handlers) and the share of ground-truth "
                         "defects found (docs/evaluation.md). Mean ± std over seeds; — where a run records no "
                         "operating point.\n"]
    for track, (settings, runs) in tracks.items():
        csv_rows, md_rows = _rows(settings, runs, decimals)
        frames += csv_rows
        synthetic = " (synthetic data)" if settings.synthetic else ""
        parts.append(f"\n## {track}: {settings.dataset}{synthetic}\n\n"
                     + markdown_table(["model", "split", "n", *COLUMNS.values()], md_rows) + "\n")
    return pd.DataFrame(frames), "".join(parts)
