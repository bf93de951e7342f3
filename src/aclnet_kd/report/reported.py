"""The paper's reported numbers (``reported.csv``, transcribed from the paper), read by every table and figure
that puts them beside ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REPORTED_CSV = Path(__file__).with_name("reported.csv")


def load_reported(path: Path = REPORTED_CSV) -> pd.DataFrame:
    """The reported rows, with Table II's swapped maxF / maxE put back under their right headings."""
    frame = pd.read_csv(path, comment="#", dtype={"year": "string", "table": "string"})
    frame["year"] = frame["year"].fillna("")
    swapped = frame["printed_maxF_maxE_swapped"].astype(str).str.lower() == "true"
    frame.loc[swapped, ["maxF", "maxE"]] = frame.loc[swapped, ["maxE", "maxF"]].to_numpy()
    return frame
