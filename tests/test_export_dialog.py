"""The export dialog (width, DPI, format) and copying figures to the clipboard."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QGuiApplication, QImage

from explorer.core import CheckSettings, check_gradient
from explorer.files.presets import get_preset
from explorer.gui.export_dialog import ExportDialog
from explorer.gui.plot_export import copy_figure, copy_widget, export_figure


def test_dialog_offers_width_and_dpi_and_follows_the_suffix(qtbot, tmp_path: Path) -> None:
    dialog = ExportDialog("dashboard", tmp_path)
    qtbot.addWidget(dialog)
    assert dialog.request().width == 1200 and dialog.request().dpi == 96
    dialog.dpi_spin.setValue(192)
    assert dialog.width_spin.value() == 2400  # the width follows the DPI until edited
    dialog.width_spin.setValue(1000)
    req = dialog.request()
    assert (req.path, req.width, req.dpi) == (tmp_path / "dashboard.png", 1000, 192.0)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(".svg"))
    assert not dialog.width_spin.isEnabled() and dialog.request().path.suffix == ".svg"
    assert dialog.request().width is None
    dialog.path_edit.setText(str(tmp_path / "x.pdf"))
    dialog.path_edit.textEdited.emit(str(tmp_path / "x.pdf"))
    assert dialog.format_combo.currentData() == ".pdf"
    report = check_gradient(*_problem())
    out = export_figure(req.path, report, "dashboard", width=req.width, dpi=req.dpi)
    assert QImage(str(out)).width() == 1000


def _problem():  # type: ignore[no-untyped-def]
    p = get_preset("origin")
    return p.logits, p.labels, CheckSettings.from_mapping(p.settings)


def test_copy_figure_puts_an_image_and_svg_on_the_clipboard(qapp) -> None:
    report = check_gradient(*_problem())
    mime = copy_figure(report, "error", scale=1.0)
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (760, 520)
    assert b"<svg" in bytes(mime.data("image/svg+xml").data())
    plot = pg.PlotWidget(background="w")
    plot.resize(300, 200)
    plot.plot([1, 2, 3], [3, 1, 2])
    copied = copy_widget(plot, scale=2.0)
    assert copied.width() == 600 and QGuiApplication.clipboard().image().width() == 600
    plot.close()
