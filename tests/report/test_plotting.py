"""The figures' shared helpers (report/plotting.py): PNG and PDF of one figure, and the figure closed."""

from __future__ import annotations

from pathlib import Path

from aclnet_kd.report.plotting import pyplot, save_figure


def test_save_figure_writes_png_and_pdf_and_closes(tmp_path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    written = save_figure(fig, tmp_path, "line")
    assert written == [tmp_path / "line.png", tmp_path / "line.pdf"]
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "line.pdf").read_bytes()[:5] == b"%PDF-"
    assert not plt.fignum_exists(fig.number)
