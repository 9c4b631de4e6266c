"""The export dialog: file, format, PNG width and DPI. The window calls :func:`ask_export`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from explorer.gui.plot_export import DEFAULT_DPI, figure_size

__all__ = ["ExportDialog", "ExportRequest", "ask_export"]

FORMATS = {".png": "PNG image", ".svg": "SVG (vector)", ".pdf": "PDF (vector)"}


@dataclass(frozen=True)
class ExportRequest:
    """What the user chose: pass ``path``, ``width`` and ``dpi`` to :func:`~explorer.gui.plot_export.export_figure`."""

    path: Path
    width: int | None
    dpi: float


class ExportDialog(QDialog):
    """File name, format, and for PNG the width in pixels and the DPI (width follows DPI until edited)."""

    def __init__(self, what: str, directory: str | Path = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export plot")
        self.setObjectName("exportDialog")
        self._base_width = figure_size(what)[0]
        self.path_edit = QLineEdit(str(Path(directory or ".") / f"{what}.png"), objectName="exportPathEdit")
        browse = QPushButton("Browse…", objectName="exportBrowseButton")
        browse.clicked.connect(self._on_browse_clicked)
        self.format_combo = QComboBox(objectName="exportFormatCombo")
        for suffix, text in FORMATS.items():
            self.format_combo.addItem(text, suffix)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.dpi_spin = QSpinBox(objectName="exportDpiSpin", minimum=10, maximum=2400, value=round(DEFAULT_DPI))
        self.dpi_spin.setSuffix(" dpi")
        self.dpi_spin.setToolTip("96 dpi: the figure's own size; 192 dpi: twice the pixels for print or HiDPI")
        self.width_spin = QSpinBox(objectName="exportWidthSpin", minimum=16, maximum=20000, value=self._base_width)
        self.width_spin.setSuffix(" px")
        self.dpi_spin.valueChanged.connect(self._on_dpi_changed)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("File", row)
        form.addRow("Format", self.format_combo)
        form.addRow("Width", self.width_spin)
        form.addRow("Resolution", self.dpi_spin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.path_edit.textEdited.connect(self._on_path_edited)

    def _on_dpi_changed(self, dpi: int) -> None:
        self.width_spin.setValue(round(self._base_width * dpi / DEFAULT_DPI))

    def _on_format_changed(self, _index: int) -> None:
        suffix = str(self.format_combo.currentData())
        png = suffix == ".png"
        self.width_spin.setEnabled(png)
        self.dpi_spin.setEnabled(png)
        self.path_edit.setText(str(Path(self.path_edit.text() or "plot").with_suffix(suffix)))

    def _on_path_edited(self, text: str) -> None:
        index = self.format_combo.findData(Path(text).suffix.lower())
        if index >= 0:
            self.format_combo.blockSignals(True)
            self.format_combo.setCurrentIndex(index)
            self.format_combo.blockSignals(False)
            self.width_spin.setEnabled(index == 0)
            self.dpi_spin.setEnabled(index == 0)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", self.path_edit.text(),
                                              "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)")  # fmt: skip
        if path:
            self.path_edit.setText(path)
            self._on_path_edited(path)

    def request(self) -> ExportRequest:
        """The choice as it stands (the suffix decides the format)."""
        path = Path(self.path_edit.text())
        if path.suffix.lower() not in FORMATS:
            path = path.with_suffix(str(self.format_combo.currentData()))
        png = path.suffix.lower() == ".png"
        return ExportRequest(path, self.width_spin.value() if png else None, float(self.dpi_spin.value()))


def ask_export(what: str, parent: QWidget | None = None, directory: str | Path = "") -> ExportRequest | None:
    """Show the dialog; the user's choice, or None when cancelled. Then call
    ``export_figure(req.path, report, what, width=req.width, dpi=req.dpi, sweep=..., screen=heatmaps)``."""
    dialog = ExportDialog(what, directory, parent)
    try:
        return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
