"""aclnet page: results/index.html holds the tables, verdicts and figures, offline; checked in a real browser
(headless Debian Chromium) where one is installed. aclnet report-landing: the Snakemake report opens on it."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aclnet_kd.cli import main as aclnet
from aclnet_kd.report.page import CSP
from aclnet_kd.workflow import plan
from browser_helper import Dom, dump_dom
from test_figures import build_results
from test_tables import md_rows


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Evaluated T / S / S* on a tiny rail set, then the real tables, figures and page commands."""
    root = tmp_path_factory.mktemp("page")
    params = build_results(root)
    common = ["--params", str(params), "--train-root", str(root / "train"), "--eval-root", str(root / "evaluate")]
    assert aclnet(["tables", *common, "--out-dir", str(root / "tables")]) == 0
    assert aclnet(["figures", *common, "--pred-root", str(root / "predict"), "--data-root", str(root / "data"),
                   "--out-dir", str(root / "figures")]) == 0
    assert aclnet(["page", *common, "--tables-dir", str(root / "tables"), "--figures-dir", str(root / "figures"),
                   "--out", str(root / "index.html")]) == 0
    return root


def _figures(root: Path) -> list[Path]:
    return sorted((root / "figures").glob("*.png"))


def _table1_rows(root: Path) -> list[list[str]]:
    """Table I's cells as the browser shows them (the header's S<sub>m</sub> reads "Sm")."""
    return [[re.sub(r"</?sub>", "", cell) for cell in row] for row in md_rows((root / "tables/table1.md").read_text())]


def _verdict(root: Path) -> str:
    line = next(line for line in (root / "tables/table1.md").read_text().splitlines() if line.startswith("**Verdict"))
    return line.replace("**", "")


def test_page_is_self_contained(results: Path) -> None:
    text = (results / "index.html").read_text()
    dom = Dom(text)
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in dom.metas
    assert not [link for link in dom.links if re.match(r"(?i)\s*(https?:)?//", link)]  # nothing to fetch
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in dom.links)
    assert "<script" not in text.lower()
    assert "SYNTHETIC DATA" in dom.text and "(SYNTHETIC data)" in dom.text.split("SYNTHETIC DATA")[0]
    assert dom.tables[0] == _table1_rows(results)
    assert _verdict(results) in dom.text
    assert len(dom.images) == len(_figures(results)) >= 5  # pr, F, E curves, qualitative, training
    # the best three of each metric column are marked: Sm (higher is better) our T / S / S* rows (tiny easy
    # set), MAE (lower is better) the paper's ACLNet-T, ACLNet-S* and DRER
    for rank, sm, mae in ((1, "0.908", "0.055"), (2, "0.875", "0.056"), (3, "0.866", "0.059")):
        assert text.count(f'<td class="rank{rank}">{sm}</td>') == 1 and f'<td class="rank{rank}">{mae}</td>' in text
    assert "Code: " in dom.text and "Provenance" in dom.text and "Params files" in dom.text


def test_page_in_chromium(results: Path, tmp_path: Path) -> None:
    """Rendered by a real browser with no network: Table I's rows, the verdict and every figure (bytes equal
    to the PNG files) are in the DOM, and the page requested nothing."""
    rendered, requests = dump_dom(results / "index.html", tmp_path / "browser")
    dom = Dom(rendered)
    assert requests == []
    assert dom.tables[0] == _table1_rows(results)
    assert _verdict(results) in dom.text
    shown = {img["alt"]: img["src"] for img in dom.images}
    for png in _figures(results):
        prefix = "data:image/png;base64,"
        assert shown[png.stem].startswith(prefix), png.stem
        assert base64.b64decode(shown[png.stem][len(prefix):]) == png.read_bytes(), png.stem


def test_network_check_can_fail(tmp_path: Path) -> None:
    """The request check of the test above sees a page that loads from the network."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://example.invalid/x.png">'
                    '<link rel="stylesheet" href="https://cdn.example.invalid/a.css"></body></html>')
    _, requests = dump_dom(page, tmp_path / "browser")
    assert sorted(requests) == ["http://example.invalid/x.png", "https://cdn.example.invalid/a.css"]


def test_page_without_tables_is_an_error(results: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "index.html"
    (tmp_path / "tables").mkdir()
    code = aclnet(["page", "--params", str(results / "params.yaml"), "--tables-dir", str(tmp_path / "tables"),
                   "--figures-dir", str(results / "figures"), "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "none of the tables" in capsys.readouterr().err


SNAKEFILE = f"""
rule page:
    output: report("{plan.PAGE}", category="Results")
    shell: "cp {{PAGE}} {{output}}"
"""


def test_snakemake_report_opens_on_the_page(results: Path, tmp_path: Path) -> None:
    """A real `snakemake --report`, then report-landing: the report's app shows the page at once (an iframe of
    it), where the unchanged report shows its DAG."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("{PAGE}", str(results / "index.html")))
    snakemake = Path(sys.executable).with_name("snakemake")
    for args in (["--cores", "1", "--quiet"], ["--report", "report.html"]):
        subprocess.run([str(snakemake), *args], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    plain = (tmp_path / "report.html").read_text()
    assert aclnet(["report-landing", str(tmp_path / "report.html")]) == 0
    assert aclnet(["report-landing", str(tmp_path / "report.html")]) == 0  # a second run changes nothing
    landing = (tmp_path / "report.html").read_text()
    assert landing.count("aclnet report-landing") == 1 and len(landing) > len(plain)
    (tmp_path / "plain.html").write_text(plain)
    iframe = re.compile(r'<iframe[^>]*src="data:text/html[^"]*filename=index\.html')
    assert not iframe.search(dump_dom(tmp_path / "plain.html", tmp_path / "b1", budget_ms=5000)[0])
    assert iframe.search(dump_dom(tmp_path / "report.html", tmp_path / "b2", budget_ms=5000)[0])


def test_report_landing_refuses_a_report_without_the_page(tmp_path: Path, capsys) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html><script>app = this;</script></html>")
    assert aclnet(["report-landing", str(report)]) == 2
    assert "holds no result 'results/index.html'" in capsys.readouterr().err
    assert "report-landing" not in report.read_text()


def test_table_tex_files_pass_the_check_and_compile(results: Path, tmp_path: Path) -> None:
    from test_rendering import compile_tables, strict_check

    tex = sorted((results / "tables").glob("*.tex"))
    assert [p.name for p in tex] == ["table1.tex"]  # the paper tables (and Table III) only
    for path in tex:
        strict_check(path.read_text())
    compile_tables(tex, tmp_path / "latex")


def test_synthetic_banner_names_the_synthetic_tracks_only() -> None:
    from aclnet_kd.report.page import banner

    def params(**sources: str) -> dict:
        return {"tracks": {t: {"dataset": t, "test_splits": ["test"]} for t in sources},
                "datasets": {t: {"source": s} for t, s in sources.items()}}

    assert "the rail and sod tracks ran on" in banner(params(rail="synthetic-rail", sod="synthetic-sod"))
    assert "the sod track ran on" in banner(params(rail="rail", sod="synthetic-sod"))
    assert banner(params(rail="rail", sod="sod")) == ""  # real data: no banner
