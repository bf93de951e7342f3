"""The rows readers bring (params ``external``; aclnet_kd/external.py) in Tables I and II and in the PR and
F-curve figures: read from ``results/external/<name>/`` (``aclnet external``), each placed after the
reported row it is compared with (``paper_row``), with Δ = measured − reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclnet_kd.errors import AclnetError
from aclnet_kd.external import ROW_FILE, entries
from aclnet_kd.io import read_json
from aclnet_kd.report.formatting import fmt, fmt_signed
from aclnet_kd.workflow.plan import EVAL_ROOT, EXTERNAL_ROOT

METRICS = ("Sm", "MAE", "maxF", "maxE")  # the paper tables' columns (differences.TABLE_METRICS)
LINESTYLE = "--"  # external rows in the figures: dashed, so they stand apart from our trained runs
COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


@dataclass
class ExternalResult:
    """One measured external row of a track: its params entry, row.json (None: not measured yet) and
    metrics per split."""

    name: str
    entry: dict[str, Any]
    row: dict[str, Any] | None
    metrics: dict[str, dict[str, float]]
    folder: Path

    @property
    def label(self) -> str:
        return str(self.entry["label"])

    def source(self) -> str:
        if self.row is None:
            return f"ours: not measured (run `aclnet external --name {self.name}`, the `external` stage)"
        return f"ours (measured from {self.row['source']})"


def external_root(eval_root: Path, given: Path | None = None) -> Path:
    """``given``, or where the plan puts the external rows relative to the evaluation root."""
    return Path(given) if given is not None else Path(eval_root) / Path(EXTERNAL_ROOT).relative_to(EVAL_ROOT)


def read_external(root: Path, params: dict, track: str, splits: list[str]) -> list[ExternalResult]:
    """The external rows of ``track``, in params order; a row folder that exists must be complete."""
    found = []
    for name, entry in entries(params).items():
        if entry.get("track") != track:
            continue
        folder = Path(root) / name
        if not (folder / ROW_FILE).is_file():
            found.append(ExternalResult(name, entry, None, {}, folder))
            continue
        metrics = {}
        for split in splits:
            data = read_json(folder / split / "metrics.json")
            bad = [k for k in METRICS if not isinstance(data.get(k), (int, float))]
            if bad:
                raise AclnetError(f"{folder / split / 'metrics.json'}: missing or non-numeric {bad}")
            metrics[split] = {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
        found.append(ExternalResult(name, entry, read_json(folder / ROW_FILE), metrics, folder))
    return found


def _rows(result: ExternalResult, splits: list[str], reported, width: int, decimals: int,
          col) -> tuple[list[list[str]], list[dict]]:
    """The measured row (and its Δ row when ``paper_row`` is set): Markdown cells and CSV records."""
    cells, record = [result.label, result.source()], {"model": result.label, "kind": "external",
                                                      "source": result.source(), "external": result.name}
    paper_row = result.entry.get("paper_row")
    delta = [result.label, f"Δ measured − reported ({paper_row})"]
    drecord = {"model": result.label, "kind": "delta", "source": f"measured - {paper_row}", "external": result.name}
    if result.row is not None:
        record.update(protocol=result.row["protocol"], paper_row=paper_row,
                      resized_maps=sum(s["resized"] for s in result.row["splits"].values()))
    for split in splits:
        rep = reported[(reported["model"] == paper_row) & (reported["split"] == split)]
        for key in METRICS:
            value = result.metrics.get(split, {}).get(key, float("nan"))
            diff = value - float(rep.iloc[0][key]) if len(rep) else float("nan")
            cells.append(fmt(value, decimals) if result.row is not None else "—")
            delta.append(fmt_signed(diff, decimals) if result.row is not None else "—")
            record[col(split, key)], drecord[col(split, key)] = value, diff
    pad = ["—"] * (width - len(cells))  # columns of our trained models only (complexity, latency, ...)
    return ([cells + pad, delta + pad], [record, drecord]) if paper_row else ([cells + pad], [record])


def insert_rows(results: list[ExternalResult], md_rows: list[list[str]], csv_rows: list[dict],
                splits: list[str], reported, width: int, decimals: int, col) -> None:
    """Put each external row (and its Δ row) after the last table row of its ``paper_row`` (at the end
    when it has none), in params order. ``md_rows`` and ``csv_rows`` are parallel; edited in place."""
    for result in results:
        rows, records = _rows(result, splits, reported, width, decimals, col)
        paper_row = result.entry.get("paper_row")
        places = [i for i, rec in enumerate(csv_rows) if paper_row and rec.get("model") == paper_row]
        at = places[-1] + 1 if places else len(md_rows)
        while at < len(csv_rows) and csv_rows[at].get("external") and csv_rows[at]["model"] != paper_row:
            at += 1  # after the external rows placed here before (params order)
        md_rows[at:at] = rows
        csv_rows[at:at] = records


def notes(results: list[ExternalResult]) -> list[str]:
    """The footnote of the external rows: what they are, the protocol of each, resized maps."""
    if not results:
        return []
    parts = []
    for result in results:
        if result.row is None:
            parts.append(f"{result.label}: not measured yet")
            continue
        resized = {s: f["resized"] for s, f in result.row["splits"].items() if f["resized"]}
        text = f"{result.label}: maps {result.row['protocol']}" + (
            f", made at {result.row['image_size']} px" if result.row.get("image_size") else "")
        if resized:
            text += ("; maps resized (bilinear) to their GT's size: "
                     + ", ".join(f"{n} of {result.row['splits'][s]['n']} on {s}" for s, n in resized.items()))
        parts.append(text)
    return ["Rows \"ours (measured from ...)\" are what readers bring (params `external`): released weights "
            "or published maps, scored by this pipeline's evaluation (the same PySODMetrics code as our rows, "
            "at the GT's size); Δ = measured − the reported row named in brackets. release_minmax = the "
            "release's maps (sigmoid, then per-map min-max at network size, as plt.imsave(cmap='gray') "
            "writes them). They have no complexity, latency or operating point. " + "; ".join(parts) + "."]

