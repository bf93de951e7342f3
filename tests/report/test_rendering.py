"""report/rendering.py: the tables' Markdown read back, the top three of each metric column ranked, LaTeX
that compiles (pdflatex from Debian's texlive-latex-recommended when installed; a strict check always)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aclnet_kd.report.rendering import blocks_latex, latex_text, parse_markdown, top_ranks

MARKDOWN = """### Table X on SYNTHETIC data: a & b_c 50%

| Model | Source | S<sub>m</sub> ↑ | MAE ↓ | FLOPs/G ↓ |
|---|---|---|---|---|
| A 2020 | paper | 0.800 | 0.100 | 10.0 |
| B 2021 | paper | 0.850 | 0.050 | 5.0 |
| ACLNet-S* | ours: n=2 (seed 0, 1) | 0.850 ± 0.010 | 0.070 ± 0.002 | 2.0 |
| ACLNet-S* | Δ ours − paper | +0.900 | −0.900 | — |
| C \\| pipe | paper | 0.700 | 0.200 | — |

1. Metrics: α = 0.5, β² = 0.3, `aclnet tables`.
2. A run marked † did not converge (§2).

**Verdict.** S* − S: no detectable difference.
"""


def test_parse_markdown_blocks() -> None:
    blocks = parse_markdown(MARKDOWN)
    assert [b.kind for b in blocks] == ["heading", "table", "notes", "paragraph"]
    table = blocks[1]
    assert table.header[2] == "S<sub>m</sub> ↑" and len(table.rows) == 5
    assert table.rows[4][0] == "C | pipe"  # an escaped pipe stays in its cell
    assert blocks[2].items[1] == "A run marked † did not converge (§2)."


def test_top_three_per_metric_column_with_ties_and_directions() -> None:
    table = parse_markdown(MARKDOWN)[1]
    ranks = top_ranks(table.header, table.rows)
    # Sm (higher better): 0.850 twice (tie, both first), then 0.800, then 0.700; the Δ row is not ranked
    assert {r: ranks.get((r, 2)) for r in range(5)} == {0: 2, 1: 1, 2: 1, 3: None, 4: 3}
    # MAE (lower better): 0.050, 0.070, 0.100
    assert {r: ranks.get((r, 3)) for r in range(5)} == {0: 3, 1: 1, 2: 2, 3: None, 4: None}
    assert not any(col in (0, 1, 4) for _, col in ranks)  # names, sources, FLOPs: not ranked


def test_latex_text_escapes_and_refuses_unknown_symbols() -> None:
    assert latex_text("a & b_c 50% $x$ #1") == r"a \& b\_c 50\% \$x\$ \#1"
    assert latex_text("S<sub>m</sub> ↑ 0.8 ± 0.1, −0.2") == r"S$_{m}$ $\uparrow$ 0.8 $\pm$ 0.1, $-$0.2"
    assert latex_text("**Verdict.** `code`") == r"\textbf{Verdict.} \texttt{code}"
    with pytest.raises(ValueError, match="no LaTeX form for '☃'"):
        latex_text("snow ☃")


def strict_check(tex: str) -> None:
    """What a LaTeX engine would reject first: unbalanced braces or environments, ragged table rows."""
    body = re.sub(r"\\[{}&%$#_]", "", tex)  # escaped specials are text
    body = "\n".join(line.split("%", 1)[0] for line in body.splitlines())  # comments
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unclosed {"
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", body):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} does not close the open environment"
    assert not stack, f"unclosed environments {stack}"
    for tabular in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", body, re.S):
        columns, rows = len(tabular[0]), [r for r in tabular[1].split(r"\\") if "&" in r]
        assert rows and all(r.count("&") == columns - 1 for r in rows), "a row with the wrong number of cells"
        assert all(rule in tabular[1] for rule in (r"\toprule", r"\midrule", r"\bottomrule"))


def _pdflatex() -> str | None:
    path = shutil.which("pdflatex")
    if path is None and os.environ.get("ACLNET_REQUIRE_LATEX") == "1":
        pytest.fail("pdflatex is not installed and ACLNET_REQUIRE_LATEX=1 (.ci/run installs texlive-latex-recommended)")
    return path


def compile_tables(tex_files: list[Path], work: Path) -> None:
    """Compile ``tex_files`` in one article with pdflatex (skips when it is not installed)."""
    engine = _pdflatex()
    if engine is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-recommended; .ci/run does)")
    work.mkdir(parents=True, exist_ok=True)
    inputs = "".join(f"\\input{{{path.resolve()}}}\n" for path in tex_files)
    (work / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
                                  "\\usepackage{xcolor}\n\\begin{document}\n" + inputs + "\\end{document}\n")
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (work / "doc.pdf").read_bytes().startswith(b"%PDF")


def test_latex_marks_top_three_and_compiles(tmp_path: Path) -> None:
    tex = blocks_latex(parse_markdown(MARKDOWN))
    strict_check(tex)
    assert r"\textcolor{red}{\textbf{0.850 $\pm$ 0.010}}" in tex and r"\textcolor{blue}{0.800}" in tex
    assert r"\textcolor{green!50!black}{0.700}" in tex
    assert r"\footnotesize" in tex.split(r"\end{tabular}")[1]  # the notes below the table, small
    assert r"\textbf{Verdict.}" in tex
    (tmp_path / "t.tex").write_text(tex)
    compile_tables([tmp_path / "t.tex"], tmp_path / "latex")


def test_strict_check_catches_broken_latex() -> None:
    good = blocks_latex(parse_markdown(MARKDOWN))
    for broken in (good.replace(r"\bottomrule", r"\bottomrule}"), good.replace(r"\end{table}", ""),
                   good.replace("A 2020 & paper & ", "A 2020 & paper ", 1)):
        with pytest.raises(AssertionError):
            strict_check(broken)
