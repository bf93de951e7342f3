"""``aclnet report-landing``: make the Snakemake report open on results/index.html.

    snakemake --report results/report.html && aclnet report-landing results/report.html

Snakemake's HTML report opens on its DAG chart and lists results by category; it has no setting for the
page it opens on. This puts one statement into the report's app (before its ``app = this;``): when the
report holds ``results/index.html``, the app starts showing it, as a click on it would; the navigation,
the DAG and the run statistics stay one click away. A report without the page, or from a Snakemake whose
app no longer has that statement, is an error naming the file (tested against the pinned Snakemake).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_write_texts
from aclnet_kd.workflow.plan import PAGE

ANCHOR = "app = this;"  # the App constructor's last statement (snakemake/report/html_reporter/.../app.js)
MARK = "/* aclnet report-landing */"
OPEN = (MARK + " if (results[{page}] !== undefined) {{ this.state.content = \"html\"; "
        "this.state.contentPath = results[{page}].data_uri; this.state.resultPath = {page}; }}\n        ")


def open_on(report: str, page: str = PAGE) -> str:
    """The report's text, made to open on ``page``; unchanged when it already does."""
    if MARK in report:
        return report
    if report.count(ANCHOR) != 1:
        raise ValueError(f"found {report.count(ANCHOR)} times the statement {ANCHOR!r} (expected once)")
    if f'"{page}": {{' not in report:
        raise ValueError(f"it holds no result {page!r} (declare it with report() in a rule)")
    return report.replace(ANCHOR, OPEN.format(page=json.dumps(page)) + ANCHOR)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="the HTML report of `snakemake --report`")
    parser.add_argument("--page", default=PAGE, help=f"the result to open on (default {PAGE})")


def main(args: argparse.Namespace) -> int:
    if not args.report.is_file():
        raise AclnetError(f"{args.report}: no such report (run `snakemake --report {args.report}` first)")
    try:
        text = open_on(args.report.read_text(encoding="utf-8"), args.page)
    except ValueError as err:
        raise AclnetError(f"{args.report}: not a Snakemake report this command knows: {err}") from None
    atomic_write_texts({args.report: text})
    print(f"{args.report} opens on {args.page}")
    return 0
