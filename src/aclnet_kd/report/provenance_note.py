"""The tables' code footnote: which commit (and torch version) each of our rows came from.

A row's numbers come from its seeds' training (run.json) and evaluation (each split's metrics.json); both
carry a ``provenance`` object (aclnet_kd.provenance). When every record agrees the note names the one
commit; once reruns are selective and rows mix commits or torch versions, it lists each and its rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from aclnet_kd.provenance import code_key
from aclnet_kd.report.collect import RunResults


def _metrics_provenance(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    value = data.get("provenance") if isinstance(data, dict) else None
    return value if isinstance(value, dict) else None


def row_sources(result: RunResults, splits: list[str]) -> dict[tuple[str, str], list[int]]:
    """{(short commit, torch version): seeds} over the run's training and evaluation records."""
    found: dict[tuple[str, str], list[int]] = {}
    for seed in result.seeds:
        record = result.run_info.get(seed)
        infos = [record.provenance if record is not None else None]
        infos += [_metrics_provenance(result.eval_dirs[seed] / split / "metrics.json") for split in splits]
        for key in dict.fromkeys(code_key(info) for info in infos):
            found.setdefault(key, [])
            if seed not in found[key]:
                found[key].append(seed)
    return found


def code_note(rows: dict[str, RunResults], splits: list[str]) -> str:
    """The footnote for ``rows`` ({row label: its results}): one commit, or each commit with its rows."""
    groups: dict[tuple[str, str], list[str]] = {}
    for label, result in rows.items():
        sources = row_sources(result, splits)
        for key, seeds in sources.items():
            which = label if len(sources) == 1 else f"{label} (seed{'s' if len(seeds) > 1 else ''} " \
                                                    f"{', '.join(map(str, seeds))})"
            groups.setdefault(key, []).append(which)
    if not groups:
        return "Code: no rows of ours."
    if len(groups) == 1:
        (commit, torch), = groups
        return (f"Code: every row of ours was trained and evaluated at commit {commit} with torch {torch} "
                f"(the `provenance` of run.json and metrics.json: packages, CPU, GPU).")
    parts = [f"commit {commit}, torch {torch}: {', '.join(labels)}" for (commit, torch), labels in groups.items()]
    return ("Code: our rows come from several commits or torch versions (the `provenance` of run.json and "
            "metrics.json): " + "; ".join(parts) + ".")
