"""The paper's reported numbers (report/reported.py): Table II's swapped maxF / maxE columns are put back."""

from __future__ import annotations

import pandas as pd

from aclnet_kd.report.reported import REPORTED_CSV, load_reported


def test_swapped_columns_are_put_back_and_only_those() -> None:
    raw = pd.read_csv(REPORTED_CSV, comment="#")
    fixed = load_reported()
    swapped = raw["printed_maxF_maxE_swapped"].astype(str).str.lower() == "true"
    assert swapped.any() and not swapped.all()
    assert (fixed.loc[swapped, "maxF"].to_numpy() == raw.loc[swapped, "maxE"].to_numpy()).all()
    assert (fixed.loc[~swapped, "maxF"].to_numpy() == raw.loc[~swapped, "maxF"].to_numpy()).all()
    bbs = fixed[(fixed["model"] == "BBS") & (fixed["split"] == "NJU2K")].iloc[0]
    assert (bbs["maxF"], bbs["maxE"]) == (0.920, 0.949)  # BBS-Net's own paper: maxF 0.920, maxE 0.949
