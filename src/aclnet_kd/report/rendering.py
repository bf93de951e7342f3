"""The tables' Markdown, read back and written as HTML (results/index.html) and LaTeX (results/tables/*.tex).

The Markdown files are the one source of every table's cells, notes and verdict (report/tables.py,
report/table3.py, report/differences.py write them); this module reads back the small subset they use
(``###`` headings, pipe tables, numbered notes, paragraphs with ``**bold**`` and ```code```) and renders it.
The top three values of each metric column are marked the way the field's tables mark them (PySODEvalToolkit's
converter): first, second and third in distinct styles (:data:`RANK_STYLES`). Standard library only.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

from aclnet_kd.report.formatting import HEADINGS

# Rank -> (LaTeX wrapper, HTML class, words for the legend): red bold, blue, green.
RANK_STYLES = {
    1: (r"\textcolor{red}{\textbf{%s}}", "rank1", "first: red bold"),
    2: (r"\textcolor{blue}{%s}", "rank2", "second: blue"),
    3: (r"\textcolor{green!50!black}{%s}", "rank3", "third: green"),
}
RANK_LEGEND = "Best three of each metric column: " + ", ".join(words for _, _, words in RANK_STYLES.values()) + "."
_NUMBER = re.compile(r"^[+\-−]?\d+(\.\d+)?")


@dataclass
class Block:
    """One block of a Markdown report file: heading, table, notes (numbered list) or paragraph."""

    kind: str
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
    return [cell.strip().replace("\\|", "|") for cell in cells]


def parse_markdown(text: str) -> list[Block]:
    """The blocks of a report Markdown file, in order."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = chunk.strip().splitlines()
        if not lines:
            continue
        if lines[0].startswith("#"):
            blocks.append(Block("heading", lines[0].lstrip("#").strip()))
            lines = lines[1:]
            if not lines:
                continue
        if lines[0].startswith("|"):
            rows = [_cells(line) for line in lines if not re.match(r"^\|[-|: ]+\|$", line.strip())]
            blocks.append(Block("table", header=rows[0], rows=rows[1:]))
        elif re.match(r"^\d+\. ", lines[0]):
            blocks.append(Block("notes", items=[re.sub(r"^\d+\. ", "", line) for line in lines]))
        else:
            blocks.append(Block("paragraph", " ".join(lines)))
    return blocks


def number(cell: str) -> float:
    """The leading number of a cell ("0.710 ± 0.014" -> 0.71, "−0.003" -> -0.003); NaN when there is none."""
    match = _NUMBER.match(cell.strip())
    return float(match.group(0).replace("−", "-")) if match else math.nan


def _direction(heading: str) -> int:
    """+1 when higher is better, -1 when lower is, 0 for a column that is not ranked (not a metric)."""
    if not any(metric in heading for metric in HEADINGS.values()):
        return 0
    return 1 if "↑" in heading else -1 if "↓" in heading else 0


def top_ranks(header: list[str], rows: list[list[str]]) -> dict[tuple[int, int], int]:
    """{(row, column): 1, 2 or 3} for the best three values of each metric column; ties share a rank.
    Rows of differences (a cell starting with "Δ") are not ranked."""
    ranks: dict[tuple[int, int], int] = {}
    ranked_rows = [i for i, row in enumerate(rows) if not any(cell.startswith("Δ") for cell in row)]
    for col, heading in enumerate(header):
        sign = _direction(heading)
        values = {i: number(rows[i][col]) for i in ranked_rows if col < len(rows[i])}
        values = {i: v for i, v in values.items() if not math.isnan(v)}
        if not sign or not values:
            continue
        best = sorted(set(values.values()), reverse=sign > 0)[:len(RANK_STYLES)]
        for i, value in values.items():
            if value in best:
                ranks[(i, col)] = best.index(value) + 1
    return ranks


# ---- HTML ---------------------------------------------------------------------------------------------------
def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = out.replace("&lt;sub&gt;", "<sub>").replace("&lt;/sub&gt;", "</sub>")
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def table_html(block: Block) -> str:
    ranks = top_ranks(block.header, block.rows)
    head = "".join(f"<th>{_inline_html(cell)}</th>" for cell in block.header)
    body = []
    for i, row in enumerate(block.rows):
        cells = []
        for j, cell in enumerate(row):
            rank = ranks.get((i, j))
            attr = f' class="{RANK_STYLES[rank][1]}"' if rank else ""
            cells.append(f"<td{attr}>{_inline_html(cell)}</td>")
        kind = ' class="delta"' if any(c.startswith("Δ") for c in row) else ""
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def blocks_html(blocks: list[Block], level: int = 3) -> str:
    """The blocks as HTML (headings at ``<h{level}>``)."""
    parts = []
    for block in blocks:
        if block.kind == "heading":
            parts.append(f"<h{level}>{_inline_html(block.text)}</h{level}>")
        elif block.kind == "table":
            parts.append(table_html(block))
        elif block.kind == "notes":
            parts.append('<ol class="notes">' + "".join(f"<li>{_inline_html(item)}</li>" for item in block.items)
                         + "</ol>")
        else:
            css = ' class="verdict"' if block.text.startswith("**Verdict.**") else ""
            parts.append(f"<p{css}>{_inline_html(block.text)}</p>")
    return "\n".join(parts)


# ---- LaTeX --------------------------------------------------------------------------------------------------
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"−": "$-$", "—": "---", "–": "--", "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
                  "Δ": r"$\Delta$", "²": r"$^2$", "α": r"$\alpha$", "β": r"$\beta$", "†": r"\textsuperscript{\dag}",
                  "§": r"\S{}", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "*": r"$^*$"}


def latex_text(text: str) -> str:
    """Report text as LaTeX: specials escaped, the symbols the reports use as math, ``S<sub>m</sub>`` as
    S$_m$, ``**bold**`` as \\textbf, ```code``` as \\texttt. Any other non-ASCII character is an error, so a
    new symbol cannot slip into a .tex that does not compile."""
    out = []
    for part in re.split(r"(\*\*.+?\*\*|`[^`]+`|<sub>.*?</sub>)", text):
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(r"\textbf{" + latex_text(part[2:-2]) + "}")
        elif part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(r"\texttt{" + latex_text(part[1:-1]) + "}")
        elif part.startswith("<sub>"):
            out.append("$_{" + latex_text(part[5:-6]) + "}$")
        else:
            out.append("".join(_latex_char(char) for char in part))
    return "".join(out)


def _latex_char(char: str) -> str:
    if char in _LATEX_ESCAPES:
        return _LATEX_ESCAPES[char]
    if char in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[char]
    if ord(char) > 127:
        raise ValueError(f"no LaTeX form for {char!r} (add it to report/rendering.py _LATEX_SYMBOLS)")
    return char


def table_latex(block: Block, caption: str, notes: list[str]) -> str:
    """One table float: booktabs rules, the top three of each metric column marked, notes in \\footnotesize."""
    ranks = top_ranks(block.header, block.rows)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\caption{" + latex_text(caption) + "}",
             r"\resizebox{\textwidth}{!}{%", r"\begin{tabular}{l" + "l" * (len(block.header) - 1) + "}",
             r"\toprule", " & ".join(latex_text(c) for c in block.header) + r" \\", r"\midrule"]
    for i, row in enumerate(block.rows):
        cells = []
        for j, cell in enumerate(row):
            text = latex_text(cell)
            cells.append(RANK_STYLES[ranks[(i, j)]][0] % text if (i, j) in ranks else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if notes:
        lines += [r"\par\smallskip", r"\begin{minipage}{\textwidth}\footnotesize"]
        lines += [f"{k}. {latex_text(note)}\\par" for k, note in enumerate(notes, 1)]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


LATEX_PREAMBLE = ("% Needs \\usepackage{booktabs}, \\usepackage{graphicx} and \\usepackage{xcolor}.\n"
                  f"% {RANK_LEGEND}\n")


def blocks_latex(blocks: list[Block]) -> str:
    """Every table of a report file as a LaTeX float, its caption the heading before it, its footnotes the
    notes, the legend of the marks and the paragraphs after it (the verdict)."""
    floats, caption = [], ""
    for k, block in enumerate(blocks):
        if block.kind == "heading":
            caption = block.text
        elif block.kind == "table":
            notes = []
            for after in blocks[k + 1:]:
                if after.kind in ("heading", "table"):
                    break
                notes += after.items if after.kind == "notes" else [after.text]
            floats.append(table_latex(block, caption, notes + [RANK_LEGEND]))
    return LATEX_PREAMBLE + "\n\n".join(floats) + "\n"
