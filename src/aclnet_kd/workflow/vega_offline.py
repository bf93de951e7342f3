"""An offline HTML template for `dvc plots show` / `dvc plots diff`.

DVC's plots page loads vega, vega-lite and vega-embed from a CDN, so offline it stays blank ("vegaEmbed is
not defined"). This writes a template (DVC's ``--html-template``: an HTML page with a ``{plot_divs}``
placeholder) with the three libraries inline, taken from an npm install of workflow/vega/package.json (exact
versions, package-lock.json); `make dvc-plots-offline` builds it and makes it DVC's default
(``dvc config --local plots.html_template``). The page it gives then needs no network.

    python -m aclnet_kd.workflow.vega_offline workflow/vega/node_modules .dvc/plots/offline.html
"""

from __future__ import annotations

import sys
from pathlib import Path

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_write_texts

LIBRARIES = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")
PLACEHOLDER = "{plot_divs}"  # where DVC puts the charts
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # dvc_render.html.HTML replaces these


def offline_template(node_modules: Path) -> str:
    """The template's text, the libraries inline (in load order)."""
    scripts = []
    for name in LIBRARIES:
        path = Path(node_modules) / name
        if not path.is_file():
            raise AclnetError(f"{path}: missing; run `npm ci --prefix workflow/vega` (make dvc-plots-offline)")
        code = path.read_text(encoding="utf-8")
        if any(mark in code for mark in DVC_PLACEHOLDERS):  # DVC would replace it inside the library
            raise AclnetError(f"{path}: holds one of DVC's placeholders {DVC_PLACEHOLDERS}; cannot inline it")
        code = code.replace("</script", "<\\/script")  # would end the inline <script> early
        scripts.append(f"<script>/* {name} */\n{code}\n</script>")
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>DVC plots (offline)</title>\n"
            + "\n".join(scripts) + "\n<style>body{font-family:sans-serif} table{border-spacing:15px}</style>\n"
            f"</head>\n<body>\n{PLACEHOLDER}\n</body>\n</html>\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m aclnet_kd.workflow.vega_offline NODE_MODULES OUT.html", file=sys.stderr)
        return 2
    try:
        atomic_write_texts({Path(args[1]): offline_template(Path(args[0]))})
    except AclnetError as err:
        print(f"vega_offline: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
