"""The offline template for `dvc plots show` (workflow/vega_offline.py): the libraries inline; with the npm
install of workflow/vega (make dvc-plots-offline) DVC's page renders every chart in Chromium, fetching nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from aclnet_kd.errors import AclnetError
from aclnet_kd.workflow import plan
from aclnet_kd.workflow.vega_offline import LIBRARIES, offline_template
from browser_helper import dump_dom
from conftest import REPO_ROOT
from test_dvc_plots import PARAMS, write_plot_data

NODE_MODULES = REPO_ROOT / "workflow" / "vega" / "node_modules"


def _fake_modules(root: Path) -> Path:
    for k, name in enumerate(LIBRARIES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"var lib{k} = '</script>';")
    return root


def test_template_inlines_the_libraries_in_order(tmp_path: Path) -> None:
    text = offline_template(_fake_modules(tmp_path))
    assert text.count("{plot_divs}") == 1 and "http" not in text
    assert [int(k) for k in re.findall(r"var lib(\d)", text)] == [0, 1, 2]
    assert text.count("</script>") == 3  # a "</script" inside a library is escaped


def test_missing_library_or_placeholder_is_an_error(tmp_path: Path) -> None:
    modules = _fake_modules(tmp_path)
    (modules / LIBRARIES[1]).unlink()
    with pytest.raises(AclnetError, match="vega-lite.min.js: missing"):
        offline_template(modules)
    (modules / LIBRARIES[1]).write_text("x = '{plot_divs}'")
    with pytest.raises(AclnetError, match="placeholders"):
        offline_template(modules)


def test_dvc_plots_render_offline_in_chromium(tmp_path: Path) -> None:
    if not (NODE_MODULES / LIBRARIES[0]).is_file():
        pytest.skip("workflow/vega/node_modules is not installed (make dvc-plots-offline runs npm ci)")
    from conftest import BIN_DIR

    write_plot_data(tmp_path)
    (tmp_path / "offline.html").write_text(offline_template(NODE_MODULES))
    subprocess.run([str(BIN_DIR / "dvc"), "plots", "show", "--html-template", "offline.html", "-o", "out"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=120)
    dom, requests = dump_dom(tmp_path / "out" / "index.html", tmp_path / "browser", budget_ms=10_000)
    assert requests == []
    charts = len([name for item in plan.dvc_plots(PARAMS) for name in item])
    assert len(re.findall(r'<canvas[^>]*class="marks"', dom)) == charts == 3
    assert "vegaEmbed is not defined" not in dom
    assert yaml.safe_load((tmp_path / "dvc.yaml").read_text())["plots"] == plan.dvc_plots(PARAMS)
