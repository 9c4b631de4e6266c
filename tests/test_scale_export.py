"""Issue 15: an exported map of a grid with more cells than pixels shows a single bad cell (each pixel the
extreme of its cells), drawn at the figure's own pixels rather than as a whole-grid image."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from explorer.core import CheckSettings, check_gradient, compare
from explorer.gui.plot_export import build_figure, export_figure


def _planted(n: int, c: int, cell: tuple[int, int]):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    report = check_gradient(rng.normal(size=(n, c)).astype(np.float32), rng.integers(0, c, n),
                            CheckSettings(dtype="float32", tolerance="fixed"))  # fmt: skip
    num = report.grad_numeric.copy()
    num[cell] += 5.0  # one wrong cell among 1.6 million
    return dataclasses.replace(report, grad_numeric=num, comparison=compare(num, report.grad_analytic, 1e-3, 1e-2))


def test_an_exported_error_map_shows_one_bad_cell_among_millions(qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    n, c, cell = 16, 100_000, (11, 61_234)
    report = _planted(n, c, cell)
    fig = build_figure(report, "error")
    try:
        view = fig.source_panel.error  # type: ignore[attr-defined]
        image = view.image_item.image
        vb = view.plot.getViewBox()
        assert image.shape[0] * image.shape[1] <= vb.width() * vb.height() + 1  # no whole-grid image
        assert view.overview_factors[1] > 1
        where = vb.mapViewToScene(QPointF(cell[1] + 0.5, cell[0] + 0.5))
        figure_width = fig.ci.geometry().width()
    finally:
        fig.close()
    out = export_figure(tmp_path / "error.png", report, "error", width=1200)
    png = QImage(str(out))
    yellow = [(x, y) for x in range(png.width()) for y in range(png.height())
              if (lambda q: q.red() > 200 and q.green() > 200 and q.blue() < 90)(QColor(png.pixel(x, y)))]  # fmt: skip
    assert yellow, "the bad cell vanished from the exported map"
    # It is where the cell is (the colour bar's top is yellow too: far from the cell).
    scale = png.width() / figure_width
    px, py = where.x() * scale, where.y() * scale
    near = [(x, y) for x, y in yellow if abs(x - px) <= 4 * scale and abs(y - py) <= 8 * scale]
    assert near, (where, scale, yellow[:5])


def test_data_exports_stream_and_a_csv_too_large_is_refused_whole(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from explorer.files import data_export
    from explorer.files.errors import FileTooLargeError

    report = _planted(8, 20_000, (3, 4_567))
    monkeypatch.setattr(data_export, "_PIECE_CELLS", 30_000)  # several pieces
    data_export.export_npz(tmp_path / "r.npz", report)
    with np.load(tmp_path / "r.npz") as z:
        assert np.array_equal(z["abs_err"], report.abs_err) and np.array_equal(z["rel_err"], report.rel_err)
        assert np.array_equal(z["grad_numeric"], report.grad_numeric)
        assert np.array_equal(z["passed"], report.comparison.passed) and not z["passed"][3, 4_567]
    monkeypatch.setattr(data_export, "CSV_MAX_CELLS", 100_000)
    (tmp_path / "r.csv").write_text("old")
    with pytest.raises(FileTooLargeError, match=r"at most 100,000 cells.*\.npz"):
        data_export.export_csv(tmp_path / "r.csv", report)
    assert (tmp_path / "r.csv").read_text() == "old"  # nothing changed


def test_a_reproducing_script_refuses_a_grid_too_large_for_text() -> None:
    from explorer.files.snippets import SNIPPET_MAX_CELLS, code_snippet

    with pytest.raises(ValueError, match=r"at most 65,536 logits.*\.npz"):
        code_snippet(np.zeros((2, SNIPPET_MAX_CELLS // 2 + 1)), [0, 0], CheckSettings())
    scope: dict[str, object] = {}
    exec(compile(code_snippet([[0.0, 1.0]], [1], CheckSettings(dtype="bfloat16")), "snippet", "exec"), scope)
    assert str(scope["logits"].dtype) == "bfloat16"  # type: ignore[attr-defined]


def test_the_caption_under_a_figure_gives_the_full_verdict() -> None:
    from explorer.files.presets import get_preset
    from explorer.gui.plot_export import settings_caption

    preset = get_preset("origin")
    report = check_gradient(preset.logits, preset.labels, CheckSettings(eps=1e-30))
    assert report.comparison.ok  # every element within its tolerance, yet:
    caption = settings_caption(report)
    assert "CANNOT TELL" in caption and "PASS" not in caption and "noise verdict" in caption
