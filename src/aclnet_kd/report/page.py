"""``aclnet page``: results/index.html, one self-contained page of the study's results.

    aclnet page --params params.yaml [--params PRESET] --tables-dir results/tables \
        --figures-dir results/figures --train-root results/train --eval-root results/evaluate \
        --out results/index.html

The tables (Markdown written by ``aclnet tables``, rendered with report/rendering.py: the best three values
of each metric column marked), the verdicts and the differences table, every figure inline as a base64 PNG,
and a provenance block (code, packages, machine, params files, date; the records' commits). Nothing is
fetched: no script, no external URL, and a Content-Security-Policy that forbids any load but inline styles
and ``data:`` images, so the page opens offline from the file system. The Snakemake report opens on it
(``aclnet report-landing``). Standard library only (html.escape, string.Template).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
from pathlib import Path
from string import Template

from aclnet_kd import provenance
from aclnet_kd.config import load_params
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_write_texts
from aclnet_kd.report.collect import track_settings
from aclnet_kd.report.rendering import RANK_LEGEND, blocks_html, parse_markdown
from aclnet_kd.workflow import plan

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
FIGURE_KINDS = {  # the plan's figure stem template -> what it shows
    plan.PR_FIGURE: "Precision-recall curves (dataset-mean, 256 thresholds)",
    plan.THRESHOLD_FIGURES["fmeasure"]: "F-measure (β² = 0.3) against the binarisation threshold",
    plan.THRESHOLD_FIGURES["emeasure"]: "E-measure against the binarisation threshold",
    plan.QUALITATIVE_FIGURE: "Qualitative grid: input, depth, ground truth, teacher and students",
    plan.TRAINING_FIGURE: "Training curves (mean over seeds, band = min to max)",
    plan.KD_METHODS_FIGURE: "Table III: KD methods against no KD, with 95% intervals",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#111}
.synthetic{background:#b00020;color:#fff;font-size:1.3em;font-weight:bold;padding:.6em 1em;border-radius:4px}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
th,td{border-top:1px solid #999;border-bottom:1px solid #999;padding:.2em .5em;text-align:left}
thead th{border-top:2px solid #000;border-bottom:1.5px solid #000}
tbody tr:last-child td{border-bottom:2px solid #000}
tr.delta td{color:#555;font-style:italic}
td.rank1{color:#c00;font-weight:bold} td.rank2{color:#00c} td.rank3{color:#070}
ol.notes{font-size:.8em;color:#333} p.verdict{background:#f4f4f4;padding:.6em;border-left:4px solid #333}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.9em;color:#333}
dl.prov dt{font-weight:bold} dl.prov dd{margin:0 0 .4em 1.5em} code{font-size:.95em}
"""
PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<title>$title</title>
<style>$style</style>
</head>
<body>
<h1>$title</h1>
$banner
<nav><ul>$nav</ul></nav>
<p class="legend">$legend</p>
$sections
<section id="figures"><h2>Figures</h2>
$figures
</section>
<section id="provenance"><h2>Provenance</h2>
$provenance
</section>
</body>
</html>
""")


def synthetic_tracks(params: dict) -> list[str]:
    """The tracks whose dataset is a synthetic stand-in (params ``datasets.<name>.source``)."""
    return [track for track in params["tracks"] if track_settings(params, track).synthetic]


def banner(params: dict) -> str:
    tracks = synthetic_tracks(params)
    if not tracks:
        return ""
    names = " and ".join([", ".join(tracks[:-1]), tracks[-1]] if len(tracks) > 1 else tracks)
    return (f'<p class="synthetic">SYNTHETIC DATA: the {names} track{"s" if len(tracks) > 1 else ""} '
            f"ran on the embedded synthetic stand-in datasets. These numbers test the pipeline; they are not "
            f"the paper's benchmarks and cannot be compared with its numbers.</p>")


def table_sections(params: dict, tables_dir: Path) -> tuple[str, list[tuple[str, str]]]:
    """(HTML of every table file of the plan, [(anchor, title)]) in plan order. A planned table that is not
    there (a track with no evaluated run) is named on the page; none at all is an error."""
    sections, nav, absent = [], [], []
    for stem in plan.table_stems(params):
        path = tables_dir / f"{stem}.md"
        if not path.is_file():
            absent.append(path.name)
            continue
        blocks = parse_markdown(path.read_text(encoding="utf-8"))
        title = next((b.text for b in blocks if b.kind == "heading"), stem)
        sections.append(f'<section id="{stem}">\n{blocks_html(blocks)}\n</section>')
        nav.append((stem, title))
    if not sections:
        raise AclnetError(f"{tables_dir}: none of the tables {plan.table_stems(params)} (.md) is there; "
                          "run `aclnet tables` (the tables stage) first")
    if absent:
        sections.append(f'<p class="absent">Not written (no evaluated runs): {html.escape(", ".join(absent))}</p>')
    return "\n".join(sections), nav


def figure_html(stem: str, png: bytes) -> str:
    kind = next((text for template, text in FIGURE_KINDS.items() if plan.template_regex(template).match(stem)),
                "Figure")
    caption = f"{kind}: <code>{html.escape(stem)}</code> (.png/.pdf beside)"
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{html.escape(stem)}"><img alt="{html.escape(stem)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')


def figures_html(params: dict, figures_dir: Path) -> str:
    """Every planned figure that is there, inline; the planned ones that are not, named."""
    parts, absent = [], []
    for stem in plan.figure_stems(params):
        path = figures_dir / f"{stem}.png"
        if path.is_file():
            parts.append(figure_html(stem, path.read_bytes()))
        else:
            absent.append(path.name)
    if absent:
        parts.append(f'<p class="absent">Not drawn (no evaluated runs): {html.escape(", ".join(absent))}</p>')
    return "\n".join(parts)


def record_summary(roots: list[tuple[Path, str]]) -> dict[str, int]:
    """{"commit abc1234, torch X, CPU, GPU": how many records} over the run.json / metrics.json files."""
    counts: dict[str, int] = {}
    for root, pattern in roots:
        for path in sorted(Path(root).glob(pattern)) if Path(root).is_dir() else []:
            try:
                info = json.loads(path.read_text()).get("provenance")
            except (OSError, json.JSONDecodeError, AttributeError):
                info = None
            commit, torch = provenance.code_key(info)
            machine = f"{(info or {}).get('cpu') or 'CPU unknown'}, GPU {(info or {}).get('gpu') or 'none'}"
            key = f"commit {commit}, torch {torch}, {machine} ({pattern.rsplit('/', 1)[-1]})"
            counts[key] = counts.get(key, 0) + 1
    return counts


def provenance_html(params_files: list[Path], records: dict[str, int]) -> str:
    info = provenance.collect()
    git = info["git"]
    dirty = "" if git["dirty"] is None else " (tree dirty: uncommitted changes)" if git["dirty"] else " (clean)"
    versions = ", ".join(f"{name} {version or 'not installed'}" for name, version in info["versions"].items())
    params = ", ".join(f"<code>{html.escape(str(p))}</code> (sha256 "
                       f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()[:12]})" for p in params_files)
    rows = [("Page built", html.escape(info["date"])),
            ("Code", f"commit <code>{html.escape(str(git['commit']))}</code>{dirty}"),
            ("Packages", html.escape(versions)),
            ("Machine", html.escape(f"CPU {info['cpu']}; GPU {info['gpu'] or 'none'}")
             + (f"; host {html.escape(info['hostname'])}" if "hostname" in info else "")),
            ("Params files", params),
            ("Records (run.json, metrics.json)", "<ul>" + "".join(
                f"<li>{html.escape(key)}: {n}</li>" for key, n in records.items()) + "</ul>"
             if records else "none found")]
    return '<dl class="prov">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def build_page(params: dict, params_files: list[Path], tables_dir: Path, figures_dir: Path,
               train_root: Path, eval_root: Path) -> str:
    """The text of results/index.html."""
    sections, nav = table_sections(params, tables_dir)
    records = record_summary([(train_root, "**/run.json"), (eval_root, "**/metrics.json")])
    synthetic = " (SYNTHETIC data)" if synthetic_tracks(params) else ""
    links = nav + [("figures", "Figures"), ("provenance", "Provenance")]
    return PAGE.substitute(
        csp=CSP, style=STYLE, title=f"ACLNet-KD reproduction: results{synthetic}", banner=banner(params),
        nav="".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in links), legend=RANK_LEGEND,
        sections=sections, figures=figures_html(params, figures_dir),
        provenance=provenance_html(params_files, records))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", action="append", required=True, type=Path,
                        help="params.yaml, then optional presets merged over it (repeatable)")
    parser.add_argument("--tables-dir", type=Path, default=Path(plan.TABLES_DIR))
    parser.add_argument("--figures-dir", type=Path, default=Path(plan.FIGURES_DIR))
    parser.add_argument("--train-root", type=Path, default=Path(plan.TRAIN_ROOT))
    parser.add_argument("--eval-root", type=Path, default=Path(plan.EVAL_ROOT))
    parser.add_argument("--out", type=Path, default=Path(plan.PAGE))


def main(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    text = build_page(params, args.params, args.tables_dir, args.figures_dir, args.train_root, args.eval_root)
    atomic_write_texts({args.out: text})
    print(f"wrote {args.out} ({len(text.encode()) / 1e6:.1f} MB, self-contained)")
    return 0
