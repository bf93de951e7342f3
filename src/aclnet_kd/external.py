"""params ``external``: rows that readers bring, each measured by our evaluation (no torch here).

Each entry is one measured row of Table I (track ``rail``) or Table II (track ``sod``):

* ``checkpoint`` + ``arch``: a plain state_dict (the authors' released weights), built as ``models.<arch>``;
  its maps are made by ``protocol`` (default ``release_minmax``: the release's ``test_for_rail.py`` /
  ``test_for_sod.py`` take the sigmoid, then ``plt.imsave(..., cmap='gray')``, which stretches each map to
  its own min-max, at network size) at ``image_size`` (default: the track's training recipe);
* ``maps``: a folder template with ``{split}``, one folder of ``<stem>.png`` per test split (the authors'
  "Feature Maps" download, or any method's published maps); scored as they are.

``paper_row`` names the reported row of that table (reported.csv) the measured one is compared with (Δ), or
is null. The workflow runs one ``aclnet external`` job per entry (``results/external/<name>/``), and the
tables and figures add the rows. This module holds the checks the schema cannot express and the facts
the command and the report share.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


ROW_FILE = "row.json"  # results/external/<name>/row.json: what the row is, and how it was measured
MAPS_SUBDIR = "maps"  # results/external/<name>/maps/<split>/: the maps a checkpoint entry made
DEFAULT_PROTOCOL = "release_minmax"  # how the release made its maps (test_for_rail.py, test_for_sod.py)
MAPS_PROTOCOL = "as published"  # a maps entry is scored as it comes
SPLIT_FIELD = "{split}"
# Two facts written elsewhere, repeated here so that config (imported by every stage) does not import the plan
# or the report; tests/evaluate/test_external.py checks that they agree.
PAPER_TABLE_IDS = {"rail": "I", "sod": "II"}  # track -> reported.csv's `table` (plan.PAPER_TABLES)
REPORTED_CSV = Path(__file__).parent / "report" / "reported.csv"  # report.reported.REPORTED_CSV


def entries(params: dict) -> dict[str, dict[str, Any]]:
    """params ``external`` ({} when absent)."""
    return params.get("external") or {}


def kind(entry: dict) -> str:
    """``checkpoint`` or ``maps``."""
    return "checkpoint" if "checkpoint" in entry else "maps"


def protocol(entry: dict) -> str:
    return entry.get("protocol", DEFAULT_PROTOCOL) if kind(entry) == "checkpoint" else MAPS_PROTOCOL


def maps_folder(entry: dict, split: str) -> Path:
    """The maps folder of ``split`` (a maps entry)."""
    return Path(str(entry["maps"]).replace(SPLIT_FIELD, split)).expanduser()


def reported_models(table_id: str, path: Path = REPORTED_CSV) -> list[str]:
    """The row names of one paper table in reported.csv (csv module: no pandas here)."""
    with path.open(newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return list(dict.fromkeys(row["model"] for row in rows if row["table"] == table_id))


def _entry_errors(name: str, entry: dict, params: dict) -> list[str]:
    key = f"external.{name}"
    errors = []
    if ("checkpoint" in entry) == ("maps" in entry):
        errors.append(f"{key}: give either 'checkpoint' (with 'arch') or 'maps', not {'both' if 'maps' in entry else 'neither'}")
    elif "maps" in entry:
        extra = sorted({"arch", "protocol", "image_size"} & set(entry))
        if extra:
            errors.append(f"{key}: {extra} apply to a checkpoint; a maps entry is scored as published")
        splits = ((params.get("tracks") or {}).get(entry.get("track")) or {}).get("test_splits") or []
        if SPLIT_FIELD not in str(entry["maps"]) and len(splits) > 1:
            errors.append(f"{key}.maps: '{entry['maps']}' has no {SPLIT_FIELD}, but track {entry.get('track')} "
                          f"has {len(splits)} test splits {splits}: one folder each")
    if entry.get("track") not in (params.get("tracks") or {}):
        errors.append(f"{key}.track: '{entry.get('track')}' is not a track of params 'tracks'")
    row = entry.get("paper_row")
    table_id = PAPER_TABLE_IDS.get(entry.get("track"))
    if row is not None and table_id is not None and row not in reported_models(table_id):
        errors.append(f"{key}.paper_row: '{row}' is not a reported row of Table {table_id} "
                      f"(one of {reported_models(table_id)}, or null)")
    if table_id is not None and entry.get("label") in reported_models(table_id):
        errors.append(f"{key}.label: '{entry['label']}' is the name of a reported row (and of ours, for "
                      f"ACLNet-*): say what it is, e.g. '{entry['label']} (released weights)'")
    return errors


def external_errors(params: dict) -> list[str]:
    """What the schema cannot express about params ``external``: checkpoint xor maps, ``{split}`` in a
    maps template of a multi-split track, ``paper_row`` a reported row of the track's table, and labels
    that differ from our own rows' and from each other (within a track)."""
    errors = []
    labels: dict[tuple[str, str], str] = {}
    for name, entry in entries(params).items():
        errors += _entry_errors(name, entry, params)
        seen = labels.setdefault((str(entry.get("track")), str(entry.get("label"))), name)
        if seen != name:
            errors.append(f"external.{name}.label: '{entry.get('label')}' is also the label of external.{seen}")
    return errors
