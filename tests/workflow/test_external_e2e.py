"""params `external` end to end (issue 20): a copy of the session's finished Snakemake smoke run
(conftest.smoke_run), then the rows readers bring:

* rail: the smoke-trained ACLNet-S saved the way the release saves weights (a plain state_dict with the
  DataParallel `module.` prefix and the backbone's unused `rgb.head.*`), scored by the `external` stage;
* sod: the smoke ACLNet-S's NJU2K maps copied into a folder of published maps.

Snakemake then runs only the two `external` jobs and the report; DVC, with those outputs deleted, reruns the
same stages and writes the same tables. The module fixture copies the run once; the tests build on it in order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import BIN_DIR, copy_run, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SNAKEMAKE = str(BIN_DIR / "snakemake")
DVC = str(BIN_DIR / "dvc")
EXTERNAL = {
    "rel_s": {"track": "rail", "label": "ACLNet-S (released-format weights)", "paper_row": "ACLNet-S",
              "checkpoint": "downloads/ACLNet_S_rail.pth", "arch": "student", "protocol": "sigmoid"},
    "maps_s": {"track": "sod", "label": "ACLNet-S (published-format maps)", "paper_row": "ACLNet-S",
               "maps": "downloads/SalMap/ACLNet_S/{split}"},
}
EXT = "results/evaluate/external"


def _planned_rules(repo: Path) -> set[str]:
    out = run([SNAKEMAKE, "-n", "--cores", "1"], repo, timeout=120).stdout
    return {line.split()[-1].rstrip(":") for line in out.splitlines()
            if line.startswith(("rule ", "localrule "))} - {"all"}


def _bring_downloads(repo: Path) -> None:
    """What a reader brings, made from the finished smoke run: weights in the release's format, and maps."""
    ckpt = torch.load(repo / "results/train/rail/student/seed0/best.pt", map_location="cpu", weights_only=True)
    state = {f"module.{key}": value for key, value in ckpt["state_dict"].items()}
    state["module.rgb.head.weight"], state["module.rgb.head.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    (repo / "downloads").mkdir()
    torch.save(state, repo / "downloads/ACLNet_S_rail.pth")
    shutil.copytree(repo / "results/predict/sod/student/seed0/NJU2K", repo / "downloads/SalMap/ACLNet_S/NJU2K")


@pytest.fixture(scope="module")
def ext_repo(smoke_run, tmp_path_factory):
    repo = copy_run(smoke_run, tmp_path_factory.mktemp("external") / "repo")
    _bring_downloads(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["external"] = EXTERNAL
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def _rows(repo: Path, stem: str) -> pd.DataFrame:
    frame = pd.read_csv(repo / f"results/tables/{stem}.csv")
    return frame[frame["model"].isin([e["label"] for e in EXTERNAL.values()])]


def _assert_external_rows(repo: Path) -> None:
    """Both rows in their tables, measured, with Δ against ACLNet-S; the figures list them."""
    for stem, name, split in (("table1", "rel_s", "test"), ("table2", "maps_s", "NJU2K")):
        md = (repo / f"results/tables/{stem}.md").read_text()
        label = EXTERNAL[name]["label"]
        row = next(line for line in md.splitlines() if line.startswith(f"| {label} | ours (measured from"))
        assert "—" not in row.split("|")[3], row  # numbers, not dashes
        assert f"| {label} | Δ measured − reported (ACLNet-S) |" in md
        frame = _rows(repo, stem)
        measured = frame[frame["kind"] == "external"].iloc[0]
        metrics = json.loads((repo / EXT / name / split / "metrics.json").read_text())
        col = "Sm"  # one test split per table in the smoke preset: no split prefix
        assert measured[col] == pytest.approx(metrics["Sm"], abs=1e-6)
        delta = frame[frame["kind"] == "delta"].iloc[0]
        reported = {"table1": 0.842, "table2": 0.911}[stem]  # ACLNet-S's reported Sm (rail test; NJU2K)
        assert delta[col] == pytest.approx(metrics["Sm"] - reported, abs=1e-6)
    assert (repo / "results/figures/pr_rail_test.png").stat().st_size > 0


def test_snakemake_runs_only_the_external_jobs_and_the_report(ext_repo):
    repo = ext_repo
    assert _planned_rules(repo) == {"external", "tables", "figures", "page"}
    out = run([SNAKEMAKE, "--cores", "2"], repo, timeout=600).stdout
    assert "recorded 5 DVC stage(s)" in out, out[-2000:]  # external@rel_s, external@maps_s, tables, figures, page
    _assert_external_rows(repo)


def test_rows_equal_aclnet_evaluate_and_our_own_student(ext_repo):
    """The maps row equals `aclnet evaluate` on the same folder. Both rows are the smoke ACLNet-S itself
    (same weights, same maps), so they also equal its own evaluation: the release-format loader and the
    external path change nothing."""
    repo = ext_repo
    folder = "downloads/SalMap/ACLNet_S/NJU2K"
    run(["aclnet", "evaluate", "--pred", folder, "--gt", "data/prepared/synthetic-sod", "--split", "NJU2K",
         "--out", "by_hand.json", "--workers", "1"], repo)
    by_hand = _scores(repo / "by_hand.json")
    assert _scores(repo / EXT / "maps_s/NJU2K/metrics.json") == by_hand
    assert _scores(repo / "results/evaluate/sod/student/seed0/NJU2K/metrics.json") == by_hand
    ours = _scores(repo / "results/evaluate/rail/student/seed0/test/metrics.json")
    measured = _scores(repo / EXT / "rel_s/test/metrics.json")
    assert measured == pytest.approx(ours, abs=1e-6)
    row = json.loads((repo / EXT / "rel_s/row.json").read_text())
    assert row["protocol"] == "sigmoid" and len(row["cleaned"]) == 2  # module. stripped, rgb.head.* dropped


def _scores(path: Path) -> dict[str, float]:
    """The threshold-free metrics of a metrics.json (not its provenance, nor the op_* scores at a trained
    run's operating point, which maps from elsewhere do not have)."""
    from aclnet_kd.evaluate.metrics import METRIC_KEYS

    metrics = json.loads(path.read_text())
    return {key: metrics[key] for key in METRIC_KEYS}


def _dvc_changed(repo: Path) -> set[str]:
    return set(json.loads(run([DVC, "status", "--json"], repo, timeout=120).stdout or "{}"))


def test_dvc_runs_the_external_stages_and_writes_the_same_tables(ext_repo):
    """DVC tracks an entry's params: a new label reruns that entry's stage and the report, nothing else.
    Then, with the outputs deleted, DVC runs both external stages itself and writes the same tables."""
    repo = ext_repo
    assert _dvc_changed(repo) == set()  # Snakemake recorded its run with `dvc commit`
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["external"]["maps_s"]["label"] = "ACLNet-S (maps, relabelled)"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # DVC lists the stages whose own deps changed; the page follows when the tables it reads do
    assert _dvc_changed(repo) == {"external@maps_s", "tables", "figures"}
    out = run([DVC, "repro"], repo, timeout=600).stdout
    assert "Running stage 'external@maps_s'" in out and "Running stage 'tables'" in out, out[-3000:]
    assert "Running stage 'external@rel_s'" not in out and "Running stage 'train" not in out
    table2 = (repo / "results/tables/table2.md").read_text()
    assert "| ACLNet-S (maps, relabelled) | ours (measured from maps downloads/SalMap/ACLNet_S/{split}) |" in table2
    assert _dvc_changed(repo) == set()

    params["external"]["maps_s"]["label"] = EXTERNAL["maps_s"]["label"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([DVC, "repro"], repo, timeout=600)
    before = {stem: (repo / f"results/tables/{stem}.md").read_text() for stem in ("table1", "table2")}
    shutil.rmtree(repo / EXT)
    shutil.rmtree(repo / "results/tables")
    # forced: an unchanged stage with missing outputs is otherwise restored from DVC's cache, not run
    out = run([DVC, "repro", "--force", "--single-item", "external@rel_s", "external@maps_s", "tables"], repo,
              timeout=600).stdout
    for stage in ("external@rel_s", "external@maps_s", "tables"):
        assert f"Running stage '{stage}'" in out, out[-3000:]
    _assert_external_rows(repo)
    for stem, text in before.items():
        assert (repo / f"results/tables/{stem}.md").read_text() == text
    assert _dvc_changed(repo) == set()
